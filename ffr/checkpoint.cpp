#include "ffr/checkpoint.h"

#include "engine/error.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "layers/model_zoo.h"

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

}  // namespace

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
