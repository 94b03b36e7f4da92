#include "ffr/checkpoint.h"

#include "engine/error.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "layers/model_zoo.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>

namespace ffr {

namespace {

constexpr const char* kFormat = "ffr-engine classifier";

int64_t integer_entry(const std::map<std::string, std::string>& metadata, const std::string& key,
                      const std::string& path) {
  auto it = metadata.find(key);
  if (it == metadata.end()) {
    throw InputError(path + ": no '" + key + "' in the safetensors metadata (not a checkpoint written by ffr-bench run)");
  }
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (errno != 0 || end == it->second.c_str() || *end != '\0' || v <= 0) {
    throw InputError(path + ": metadata '" + key + "' is not a positive integer: '" + it->second + "'");
  }
  return v;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

void check_checkpoint_classes(const CheckpointInfo& info, const std::string& checkpoint_path,
                              const std::vector<std::string>& class_names, const std::string& manifest_path,
                              bool ignore_class_names) {
  if (int64_t(class_names.size()) != info.num_classes) {
    throw InputError(detail::concat(manifest_path, " has ", class_names.size(), " classes (", joined(class_names),
                                    ") but ", checkpoint_path, " was trained for ", info.num_classes));
  }
  auto it = info.extra.find("class_names");
  if (ignore_class_names || it == info.extra.end()) return;  // older checkpoints record no names
  const nlohmann::json doc = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> trained;
  for (const auto& name : doc.is_array() ? doc : nlohmann::json::array()) {
    if (name.is_string()) trained.push_back(name.get<std::string>());
  }
  if (!doc.is_array() || trained.size() != doc.size() || int64_t(trained.size()) != info.num_classes) {
    throw InputError(detail::concat(checkpoint_path, ": metadata 'class_names' must be a JSON array of ",
                                    info.num_classes, " strings, got '", it->second, "'"));
  }
  if (trained != class_names) {
    throw InputError(detail::concat(checkpoint_path, " was trained for the classes (", joined(trained), ") but ",
                                    manifest_path, " has (", joined(class_names),
                                    "): the scores would compare other classes (pass --ignore-class-names if "
                                    "the labels mean the same under other names)"));
  }
}

void save_checkpoint(const std::string& path, const NamedTensors& state, const CheckpointInfo& info) {
  std::map<std::string, std::string> metadata = info.extra;
  metadata["format"] = kFormat;
  metadata["architecture"] = info.architecture;
  metadata["num_classes"] = std::to_string(info.num_classes);
  metadata["image_size"] = std::to_string(info.image_size);
  save_safetensors(path, state, metadata);
}

LoadedCheckpoint load_checkpoint(const std::string& path, Device device) {
  SafetensorsFile file = load_safetensors(path);
  LoadedCheckpoint out;
  auto arch = file.metadata.find("architecture");
  if (arch == file.metadata.end()) {
    throw InputError(path + ": no 'architecture' in the safetensors metadata (not a checkpoint written by ffr-bench run)");
  }
  out.info.architecture = arch->second;
  out.info.num_classes = integer_entry(file.metadata, "num_classes", path);
  out.info.image_size = integer_entry(file.metadata, "image_size", path);
  for (const auto& [key, value] : file.metadata) {
    if (key != "format" && key != "architecture" && key != "num_classes" && key != "image_size") out.info.extra[key] = value;
  }
  Rng rng(0);  // the initial weights are overwritten at once
  out.model = make_model(out.info.architecture, out.info.num_classes, rng, out.info.image_size);
  out.model->load_state_dict(file.tensors, path);
  out.model->to(device);
  out.model->eval();
  return out;
}

}  // namespace ffr
