#include "ffr/experiment_json.h"

#include "engine/error.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace ffr {

using nlohmann::json;

namespace {

// JSON has no NaN: a metric that does not exist (no sample in any group) is written as null.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Reads doc[key] into `out` when present; a value of the wrong type names the key.
template <typename T>
void read_key(const json& doc, const char* key, T& out, const std::string& source) {
  if (!doc.contains(key)) return;
  const json& v = doc[key];
  try {
    if constexpr (std::is_floating_point_v<T>) {
      out = v.is_null() ? std::numeric_limits<T>::quiet_NaN() : v.get<T>();
    } else {
      out = v.get<T>();
    }
  } catch (const json::exception&) {
    throw InputError(detail::concat(source, ": '", key, "' has the wrong type (", v.dump(), ")"));
  }
}

json metrics_json(const SplitMetrics& m) {
  json groups = json::array();
  for (const GroupAccuracy& g : m.groups) {
    groups.push_back({{"y", g.y}, {"b", g.b}, {"correct", g.correct}, {"total", g.total},
                      {"accuracy", number(g.total > 0 ? g.accuracy() : std::nan(""))}});
  }
  return {{"worst_group_accuracy", number(m.worst_group_accuracy)},
          {"balanced_accuracy", number(m.balanced_accuracy)},
          {"average_accuracy", number(m.average_accuracy)},
          {"groups", groups}};
}

SplitMetrics metrics_from_json(const json& doc, const std::string& source) {
  SplitMetrics m;
  if (!doc.is_object()) throw InputError(source + ": expected an object of metrics");
  read_key(doc, "worst_group_accuracy", m.worst_group_accuracy, source);
  read_key(doc, "balanced_accuracy", m.balanced_accuracy, source);
  read_key(doc, "average_accuracy", m.average_accuracy, source);
  if (doc.contains("groups")) {
    if (!doc["groups"].is_array()) throw InputError(source + ": 'groups' must be a list");
    for (const json& g : doc["groups"]) {
      GroupAccuracy a;
      read_key(g, "y", a.y, source);
      read_key(g, "b", a.b, source);
      read_key(g, "correct", a.correct, source);
      read_key(g, "total", a.total, source);
      m.groups.push_back(a);
    }
  }
  return m;
}

json config_json(const ExperimentConfig& c) {
  json doc = {{"manifest", c.manifest},
          {"bias_ratio", c.bias_ratio},
          {"augmentation", data::augmentation_name(c.augmentation)},
          {"synthetic", synthetic_distribution_name(c.synthetic)},
          {"stages", stage_order_name(c.stages)},
          {"model", c.model},
          {"image_size", c.image_size},
          {"method", method_name(c.method)},
          {"learning_rate", c.learning_rate},
          {"stage1_learning_rate", c.stage1_learning_rate},
          {"weight_decay", c.weight_decay},
          {"batch_size", c.batch_size},
          {"epochs", c.epochs},
          {"stage1_epochs", c.stage1_epochs},
          {"freeze_batch_norm", c.freeze_batch_norm},
          {"groupdro_step_size", c.groupdro_step_size},
          {"groupdro_adjustment", c.groupdro_adjustment},
          {"seed", c.seed},
          {"device", c.device},
          {"precision", c.precision},
          {"deterministic", c.deterministic},
          {"loader_workers", c.loader_workers},
          {"compute_threads", c.compute_threads},
          {"max_train_samples", c.max_train_samples},
          {"init_weights", c.init_weights},
          {"init_sha256", c.init_sha256},
          {"keep_head", c.keep_head}};
  // Written only when it can matter, so the configs (and grid run names) of runs without a
  // frozen BN stay as they were; a frozen-BN run always carries it, so a result made under the
  // old meaning (affine frozen too, no key) is never taken for one made under the new default.
  if (c.method == TrainingMethod::DFR) doc["dfr_refits"] = c.dfr_refits;
  if (c.synthetic == data::SyntheticDistribution::BiasAgnostic) doc["agnostic_pool_version"] = c.agnostic_pool_version;
  if (c.freeze_batch_norm || c.freeze_batch_norm_affine) doc["freeze_batch_norm_affine"] = c.freeze_batch_norm_affine;
  return doc;
}

// config_json plus the data hashes once known (run_experiment sets them): config.json and
// result.json carry them; configurations as asked, grid files and grid.json read and write as
// before, and same_experiment compares settings only (check_same_data compares the data).
json config_json_with_data(const ExperimentConfig& c) {
  json doc = config_json(c);
  if (!c.manifest_sha256.empty()) doc["manifest_sha256"] = c.manifest_sha256;
  if (!c.sidecar_sha256.empty()) doc["sidecar_sha256"] = c.sidecar_sha256;
  return doc;
}

ExperimentConfig config_from(const json& doc, const std::string& source) {
  if (!doc.is_object()) throw InputError(source + ": expected a JSON object holding an experiment configuration");
  ExperimentConfig c;
  std::string augmentation = data::augmentation_name(c.augmentation);
  std::string synthetic = synthetic_distribution_name(c.synthetic);
  std::string stages = stage_order_name(c.stages);
  std::string method = method_name(c.method);
  read_key(doc, "manifest", c.manifest, source);
  read_key(doc, "manifest_sha256", c.manifest_sha256, source);
  read_key(doc, "sidecar_sha256", c.sidecar_sha256, source);
  read_key(doc, "bias_ratio", c.bias_ratio, source);
  read_key(doc, "augmentation", augmentation, source);
  read_key(doc, "synthetic", synthetic, source);
  read_key(doc, "stages", stages, source);
  read_key(doc, "model", c.model, source);
  read_key(doc, "image_size", c.image_size, source);
  read_key(doc, "method", method, source);
  read_key(doc, "learning_rate", c.learning_rate, source);
  read_key(doc, "stage1_learning_rate", c.stage1_learning_rate, source);
  read_key(doc, "weight_decay", c.weight_decay, source);
  read_key(doc, "batch_size", c.batch_size, source);
  read_key(doc, "epochs", c.epochs, source);
  read_key(doc, "stage1_epochs", c.stage1_epochs, source);
  read_key(doc, "freeze_batch_norm", c.freeze_batch_norm, source);
  c.freeze_batch_norm_affine = c.freeze_batch_norm;  // files written before the key: the old meaning
  read_key(doc, "freeze_batch_norm_affine", c.freeze_batch_norm_affine, source);
  read_key(doc, "groupdro_step_size", c.groupdro_step_size, source);
  read_key(doc, "groupdro_adjustment", c.groupdro_adjustment, source);
  read_key(doc, "seed", c.seed, source);
  read_key(doc, "device", c.device, source);
  read_key(doc, "precision", c.precision, source);
  read_key(doc, "deterministic", c.deterministic, source);
  read_key(doc, "loader_workers", c.loader_workers, source);
  read_key(doc, "compute_threads", c.compute_threads, source);
  read_key(doc, "max_train_samples", c.max_train_samples, source);
  read_key(doc, "init_weights", c.init_weights, source);
  read_key(doc, "init_sha256", c.init_sha256, source);
  read_key(doc, "keep_head", c.keep_head, source);
  c.dfr_refits = 5;  // DFR configs written before the key: the count they ran with
  read_key(doc, "dfr_refits", c.dfr_refits, source);
  c.agnostic_pool_version = 1;  // bias-agnostic configs written before the key: the bias-aware pool, b ignored
  read_key(doc, "agnostic_pool_version", c.agnostic_pool_version, source);
  try {
    c.augmentation = data::parse_augmentation(augmentation);
    c.synthetic = parse_synthetic_distribution(synthetic);
    c.stages = parse_stage_order(stages);
    c.method = parse_method(method);
    if (c.method != TrainingMethod::DFR) c.dfr_refits = ExperimentConfig{}.dfr_refits;  // not used, not written
    if (c.synthetic != data::SyntheticDistribution::BiasAgnostic) {
      c.agnostic_pool_version = ExperimentConfig{}.agnostic_pool_version;
    }
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }
  return c;
}

json parse(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(detail::concat(source, ": not valid JSON (", e.what(), ")"));
  }
}

}  // namespace

std::string config_to_json(const ExperimentConfig& config) { return config_json_with_data(config).dump(2) + "\n"; }

ExperimentConfig config_from_json(const std::string& text, const std::string& source) {
  return config_from(parse(text, source), source);
}

std::string result_to_json(const ExperimentResult& r) {
  json doc = {{"config", config_json_with_data(r.config)},
                    {"val", metrics_json(r.val)},
                    {"test", metrics_json(r.test)},
                    {"test_synthetic", metrics_json(r.test_synthetic)},
                    {"best_epoch", r.best_epoch},
                    {"stage1_best_epoch", r.stage1_best_epoch},
                    {"seconds", r.seconds},
                    {"device", r.device},
                    {"precision", r.precision},
                    {"compute_threads", r.compute_threads},
                    {"majority_share",
                     {{"train", number(r.train_majority_share)}, {"val", number(r.val_majority_share)}}},
                    {"warnings", r.warnings}};
  if (std::isfinite(r.feature_probe_accuracy)) doc["feature_probe_accuracy"] = r.feature_probe_accuracy;
  if (std::isfinite(r.dfr_c)) {
    doc["dfr"] = {{"c", r.dfr_c},
                  {"tuning_worst_group_accuracy", number(r.dfr_tuning_worst_group_accuracy)},
                  {"refits", r.dfr_refits},
                  {"backbone_val", metrics_json(r.backbone_val)}};
  }
  return doc.dump(2) + "\n";
}

ExperimentResult result_from_json(const std::string& text, const std::string& source) {
  const json doc = parse(text, source);
  if (!doc.is_object() || !doc.contains("config") || !doc.contains("test")) {
    throw InputError(source + ": not a result file (expected 'config' and 'test')");
  }
  ExperimentResult r;
  r.config = config_from(doc["config"], source + " (config)");
  r.test = metrics_from_json(doc["test"], source + " (test)");
  if (doc.contains("val")) r.val = metrics_from_json(doc["val"], source + " (val)");
  if (doc.contains("test_synthetic")) r.test_synthetic = metrics_from_json(doc["test_synthetic"], source + " (test_synthetic)");
  read_key(doc, "best_epoch", r.best_epoch, source);
  read_key(doc, "stage1_best_epoch", r.stage1_best_epoch, source);
  read_key(doc, "seconds", r.seconds, source);
  read_key(doc, "device", r.device, source);
  read_key(doc, "precision", r.precision, source);
  read_key(doc, "compute_threads", r.compute_threads, source);
  if (doc.contains("majority_share") && doc["majority_share"].is_object()) {
    read_key(doc["majority_share"], "train", r.train_majority_share, source + " (majority_share)");
    read_key(doc["majority_share"], "val", r.val_majority_share, source + " (majority_share)");
  }
  read_key(doc, "warnings", r.warnings, source);
  read_key(doc, "feature_probe_accuracy", r.feature_probe_accuracy, source);
  if (doc.contains("dfr") && doc["dfr"].is_object()) {
    read_key(doc["dfr"], "c", r.dfr_c, source + " (dfr)");
    read_key(doc["dfr"], "tuning_worst_group_accuracy", r.dfr_tuning_worst_group_accuracy, source + " (dfr)");
    read_key(doc["dfr"], "refits", r.dfr_refits, source + " (dfr)");
    if (doc["dfr"].contains("backbone_val")) {
      r.backbone_val = metrics_from_json(doc["dfr"]["backbone_val"], source + " (dfr.backbone_val)");
    }
  }
  return r;
}

std::string split_metrics_to_json(const SplitMetrics& metrics) { return metrics_json(metrics).dump(); }

SplitMetrics split_metrics_from_json(const std::string& text, const std::string& source) {
  return metrics_from_json(parse(text, source), source);
}

std::string epoch_metrics_to_json(const EpochMetrics& m) {
  const json line = {{"stage", m.stage},
                     {"epoch", m.epoch},
                     {"train_loss", number(m.train_loss)},
                     {"val_worst_group_accuracy", number(m.val_worst_group_accuracy)},
                     {"val_balanced_accuracy", number(m.val_balanced_accuracy)},
                     {"seconds", m.seconds},
                     {"images_per_second", m.images_per_second},
                     {"best", m.best}};
  return line.dump();
}

EpochMetrics epoch_metrics_from_json(const std::string& text, const std::string& source) {
  const json doc = parse(text, source);
  if (!doc.is_object() || !doc.contains("stage") || !doc.contains("epoch")) {
    throw InputError(source + ": not a metrics line (expected 'stage' and 'epoch')");
  }
  EpochMetrics m;
  read_key(doc, "stage", m.stage, source);
  read_key(doc, "epoch", m.epoch, source);
  read_key(doc, "train_loss", m.train_loss, source);
  read_key(doc, "val_worst_group_accuracy", m.val_worst_group_accuracy, source);
  read_key(doc, "val_balanced_accuracy", m.val_balanced_accuracy, source);
  read_key(doc, "seconds", m.seconds, source);
  read_key(doc, "images_per_second", m.images_per_second, source);
  read_key(doc, "best", m.best, source);
  return m;
}

bool same_experiment(const ExperimentConfig& a, const ExperimentConfig& b) {
  json ja = config_json(a), jb = config_json(b);
  for (const char* execution : {"loader_workers", "compute_threads"}) {
    ja.erase(execution);
    jb.erase(execution);
  }
  return ja == jb;
}

}  // namespace ffr
