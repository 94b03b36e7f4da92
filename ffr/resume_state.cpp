#include "ffr/resume_state.h"

#include "engine/error.h"
#include "engine/safetensors.h"
#include "ffr/experiment_json.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <map>

namespace ffr {

namespace {

constexpr const char* kFormat = "ffr-engine resume";
constexpr const char* kVersion = "1";
constexpr const char* kModel = "model/";
constexpr const char* kOptimizer = "optimizer/";
constexpr const char* kBest = "best/";
constexpr const char* kGroupWeights = "groupdro/q";

void add_prefixed(NamedTensors& out, const char* prefix, const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) out.emplace_back(prefix + name, t);
}

class MetadataReader {
 public:
  MetadataReader(const std::map<std::string, std::string>& metadata, const std::string& path)
      : metadata_(metadata), path_(path) {}

  const std::string& text(const std::string& key) const {
    auto it = metadata_.find(key);
    if (it == metadata_.end()) throw InputError(path_ + ": resume file without '" + key + "' in its metadata");
    return it->second;
  }
  int64_t integer(const std::string& key, int64_t min) const {
    const std::string& s = text(key);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || errno != 0 || *end != '\0' || v < min) {
      throw InputError(detail::concat(path_, ": resume metadata '", key, "' is not an integer >= ", min, ": '", s, "'"));
    }
    return v;
  }
  double number(const std::string& key) const {
    const std::string& s = text(key);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0') throw InputError(path_ + ": resume metadata '" + key + "' is not a number: '" + s + "'");
    return v;
  }
  nlohmann::json array(const std::string& key) const {
    nlohmann::json doc = nlohmann::json::parse(text(key), nullptr, /*allow_exceptions=*/false);
    if (!doc.is_array()) throw InputError(path_ + ": resume metadata '" + key + "' is not a JSON list");
    return doc;
  }

 private:
  const std::map<std::string, std::string>& metadata_;
  const std::string& path_;
};

}  // namespace

void save_resume_state(const std::string& path, const ResumeState& s) {
  NamedTensors tensors;
  add_prefixed(tensors, kModel, s.model);
  add_prefixed(tensors, kOptimizer, s.stage.optimizer);
  add_prefixed(tensors, kBest, s.stage.best.best_state);
  if (s.stage.group_weights.defined()) tensors.emplace_back(kGroupWeights, s.stage.group_weights);

  nlohmann::json finished = s.finished_best_epochs;
  nlohmann::json metrics = nlohmann::json::array();
  for (const EpochMetrics& m : s.metrics) metrics.push_back(nlohmann::json::parse(epoch_metrics_to_json(m)));
  std::map<std::string, std::string> metadata{
      {"format", kFormat},
      {"version", kVersion},
      {"config", s.config_json},
      {"stage_index", std::to_string(s.stage_index)},
      {"stage_name", s.stage_name},
      {"epochs_done", std::to_string(s.stage.epochs_done)},
      {"best_epoch", std::to_string(s.stage.best.best_epoch)},
      {"best_val", split_metrics_to_json(s.stage.best.best_val)},
      {"finished_best_epochs", finished.dump()},
      {"metrics", metrics.dump()},
      {"steps_done", std::to_string(s.steps_done)},
      {"seconds", detail::concat(s.seconds)},
  };
  save_safetensors(path, tensors, metadata);
}

ResumeState load_resume_state(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != kFormat) {
    throw InputError(path + ": not a resume file written by ffr-engine (metadata 'format' is not '" + kFormat + "')");
  }
  const MetadataReader meta(file.metadata, path);
  if (meta.text("version") != kVersion) {
    throw InputError(path + ": resume file version " + meta.text("version") + ", this build reads version " + kVersion);
  }
  ResumeState s;
  s.config_json = meta.text("config");
  s.stage_index = meta.integer("stage_index", 0);
  s.stage_name = meta.text("stage_name");
  s.stage.epochs_done = meta.integer("epochs_done", 1);
  s.stage.best.best_epoch = meta.integer("best_epoch", 1);
  s.stage.best.best_val = split_metrics_from_json(meta.text("best_val"), path + " (metadata best_val)");
  for (const auto& e : meta.array("finished_best_epochs")) {
    if (!e.is_number_integer()) throw InputError(path + ": resume metadata 'finished_best_epochs' holds a non-integer");
    s.finished_best_epochs.push_back(e.get<int64_t>());
  }
  if (int64_t(s.finished_best_epochs.size()) != s.stage_index) {
    throw InputError(detail::concat(path, ": resume metadata lists ", s.finished_best_epochs.size(),
                                    " finished stage(s) before stage index ", s.stage_index));
  }
  for (const auto& line : meta.array("metrics")) {
    s.metrics.push_back(epoch_metrics_from_json(line.dump(), path + " (metadata metrics)"));
  }
  s.steps_done = meta.integer("steps_done", 0);
  s.seconds = meta.number("seconds");

  auto starts_with = [](const std::string& name, const char* prefix) { return name.rfind(prefix, 0) == 0; };
  for (auto& [name, t] : file.tensors) {
    if (starts_with(name, kModel)) {
      s.model.emplace_back(name.substr(std::string(kModel).size()), std::move(t));
    } else if (starts_with(name, kOptimizer)) {
      s.stage.optimizer.emplace_back(name.substr(std::string(kOptimizer).size()), std::move(t));
    } else if (starts_with(name, kBest)) {
      s.stage.best.best_state.emplace_back(name.substr(std::string(kBest).size()), std::move(t));
    } else if (name == kGroupWeights) {
      s.stage.group_weights = std::move(t);
    } else {
      throw InputError(path + ": unexpected tensor '" + name + "' in a resume file");
    }
  }
  if (s.model.empty() || s.stage.best.best_state.empty()) {
    throw InputError(path + ": resume file without model or best-epoch weights");
  }
  return s;
}

}  // namespace ffr
