#include "ffr/grid.h"

#include "data/manifest.h"
#include "data/protocol.h"
#include "engine/atomic_file.h"
#include "ffr/experiment_json.h"
#include "ffr/stage1_search.h"
#include "engine/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace ffr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSeverityPlaceholder = "{severity}";
constexpr const char* kGridFormat = "ffr-grid/1";

// ---- config <-> JSON --------------------------------------------------------------------------
// Configs travel as experiment_json.h writes them (config.json, result.json), so a grid file's
// "base" and cells, grid.json and the run-name hash all use the same keys and values.

// Change where and how fast a run goes, not its numbers: left out of grid.json and run names.
// precision goes with the device (its "auto" is tf32 on CUDA, fp32 on the CPU).
const char* const kExecutionKeys[] = {"device", "precision", "loader_workers", "compute_threads"};
// Set per run from the grid's seeds and settings: not part of what a cell is.
const char* const kPerRunKeys[] = {"seed", "learning_rate", "freeze_batch_norm"};

std::string format_double(double v, const char* format) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

json config_json(const ExperimentConfig& c) { return json::parse(config_to_json(c)); }

json result_relevant_json(const ExperimentConfig& c) {
  ExperimentConfig settings = c;  // the data hashes are checked apart (check_same_data)
  settings.manifest_sha256.clear();
  settings.sidecar_sha256.clear();
  json j = config_json(settings);
  for (const char* key : kExecutionKeys) j.erase(key);
  return j;
}

[[noreturn]] void bad_value(const std::string& where, const std::string& key, const std::string& why) {
  throw InputError(detail::concat(where, ": \"", key, "\": ", why));
}

// `base` with the keys of `overrides` replaced. Every key must be a config key; values are checked
// by config_from_json (wrong type, unknown enum value), with `where` in the message.
ExperimentConfig with_overrides(const ExperimentConfig& base, const json& overrides, const std::string& where) {
  if (!overrides.is_object()) throw InputError(detail::concat(where, ": expected a JSON object, got ", overrides.dump()));
  json merged = config_json(base);
  for (const auto& [key, value] : overrides.items()) {
    if (!merged.contains(key)) bad_value(where, key, "unknown config key");
    merged[key] = value;
  }
  return config_from_json(merged.dump(), where);
}

double number_of(const json& v, const std::string& where, const std::string& key) {
  if (!v.is_number()) bad_value(where, key, "expected a number, got " + v.dump());
  return v.get<double>();
}
int64_t integer_of(const json& v, const std::string& where, const std::string& key) {
  if (!v.is_number_integer()) bad_value(where, key, "expected an integer, got " + v.dump());
  return v.get<int64_t>();
}
uint64_t unsigned_of(const json& v, const std::string& where, const std::string& key) {
  const int64_t i = integer_of(v, where, key);
  if (i < 0) bad_value(where, key, "expected a non-negative integer, got " + v.dump());
  return uint64_t(i);
}
bool bool_of(const json& v, const std::string& where, const std::string& key) {
  if (!v.is_boolean()) bad_value(where, key, "expected true or false, got " + v.dump());
  return v.get<bool>();
}
std::string string_of(const json& v, const std::string& where, const std::string& key) {
  if (!v.is_string()) bad_value(where, key, "expected a string, got " + v.dump());
  return v.get<std::string>();
}

json parse_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(detail::concat(source, ": not valid JSON: ", e.what()));
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(detail::concat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A complete run folder's result, checked to be that run's: a hand-edited or misplaced folder
// must not slip someone else's numbers into a table.
ExperimentResult read_run(const std::string& dir, const ExperimentConfig& config) {
  ExperimentResult result = read_result(dir);
  if (result_relevant_json(result.config) != result_relevant_json(config)) {
    throw InputError(detail::concat(dir, ": result.json holds another configuration than this run's (",
                                    result_relevant_json(result.config).dump(), "); delete the folder to rerun it"));
  }
  return result;
}

// A value or a list of values, as a list.
template <typename T, typename Get>
std::vector<T> list_of(const json& v, const std::string& where, const std::string& key, Get get) {
  std::vector<T> out;
  if (v.is_array()) {
    for (const json& item : v) out.push_back(get(item, where, key));
  } else {
    out.push_back(get(v, where, key));
  }
  return out;
}

// ---- presets ----------------------------------------------------------------------------------

struct Variant {
  std::string label;
  data::Augmentation augmentation = data::Augmentation::None;
  TrainingMethod method = TrainingMethod::ERM;
  StageOrder stages = StageOrder::Full;
  data::SyntheticDistribution synthetic = data::SyntheticDistribution::Balanced;
};

const std::vector<data::Augmentation> kAugmentations = {data::Augmentation::None, data::Augmentation::USB,
                                                         data::Augmentation::ASB, data::Augmentation::FFR};
const std::vector<data::Augmentation> kSyntheticAugmentations = {data::Augmentation::USB, data::Augmentation::ASB,
                                                                  data::Augmentation::FFR};

struct Preset {
  std::string name;
  std::string description;
  std::function<std::vector<Variant>(int severity)> variants;
  bool uses_severity_pattern = false;
};

Variant plain(data::Augmentation a, TrainingMethod m = TrainingMethod::ERM) {
  Variant v;
  v.augmentation = a;
  v.method = m;
  v.label = display_name(a);
  return v;
}

const std::vector<Preset>& presets() {
  using A = data::Augmentation;
  using S = data::SyntheticDistribution;
  static const std::vector<Preset> all = {
      {"figure3", "None / USB / ASB / FFR with ERM against the bias ratio (paper Figure 3)",
       [](int) {
         std::vector<Variant> v;
         for (A a : kAugmentations) v.push_back(plain(a));
         return v;
       }},
      {"table4x4", "{None, USB, ASB, FFR} x {ERM, Resampling, GroupDRO, DFR} (paper Figure 4)",
       [](int) {
         std::vector<Variant> v;
         for (A a : kAugmentations) {
           for (TrainingMethod m : {TrainingMethod::ERM, TrainingMethod::Resampling, TrainingMethod::GroupDRO,
                                    TrainingMethod::DFR}) {
             Variant x = plain(a, m);
             x.label = display_name(a) + " + " + display_name(m);
             v.push_back(x);
           }
         }
         return v;
       }},
      {"table1", "FFR stage ablation: stage 1 only, stage 2 only, stage 2 then 1, stage 1 then 2 (paper Table 1)",
       [](int) {
         std::vector<Variant> v;
         const std::pair<StageOrder, const char*> orders[] = {{StageOrder::Stage1Only, "stage 1 only"},
                                                              {StageOrder::Stage2Only, "stage 2 only"},
                                                              {StageOrder::Stage2Then1, "stage 2 then 1"},
                                                              {StageOrder::Full, "stage 1 then 2 (FFR)"}};
         for (const auto& [order, label] : orders) {
           Variant x = plain(A::FFR);
           x.stages = order;
           x.label = label;
           v.push_back(x);
         }
         return v;
       }},
      {"table2", "FFR pretraining distribution: None, FFR biased pretraining, FFR balanced (paper Table 2)",
       [](int) {
         Variant biased = plain(A::FFR), balanced = plain(A::FFR);
         biased.synthetic = S::Biased;
         biased.label = "FFR, biased pretraining";
         balanced.label = "FFR, balanced pretraining";
         return std::vector<Variant>{plain(A::None), biased, balanced};
       }},
      {"table3", "USB / ASB / FFR on real and on held-out synthetic test images (paper Table 3)",
       [](int) {
         std::vector<Variant> v;
         for (A a : kSyntheticAugmentations) v.push_back(plain(a));
         return v;
       }},
      {"table4", "USB / ASB / FFR against synthetic-image corruption severity 0..5 (paper Table 4)",
       [](int severity) {
         std::vector<Variant> v;
         for (A a : kSyntheticAugmentations) {
           Variant x = plain(a);
           x.label = detail::concat(display_name(a), ", severity ", severity);
           v.push_back(x);
         }
         return v;
       },
       true},
      {"table5", "bias-agnostic synthetic data: None, FFR bias-agnostic, FFR bias-aware (paper Table 5)",
       [](int) {
         Variant agnostic = plain(A::FFR), aware = plain(A::FFR);
         agnostic.synthetic = S::BiasAgnostic;
         agnostic.label = "FFR, bias-agnostic synthetic";
         aware.label = "FFR, bias-aware synthetic";
         return std::vector<Variant>{plain(A::None), agnostic, aware};
       }},
      {"table8", "None / USB / ASB / FFR with a ViT backbone (paper Table 8)",
       [](int) {
         std::vector<Variant> v;
         for (A a : kAugmentations) v.push_back(plain(a));
         return v;
       }},
  };
  return all;
}

const Preset* find_preset(const std::string& name) {
  for (const Preset& p : presets()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool is_pattern(const std::string& manifest) { return manifest.find(kSeverityPlaceholder) != std::string::npos; }

std::string with_severity(std::string pattern, int severity) {
  const std::string placeholder = kSeverityPlaceholder;
  for (size_t at = pattern.find(placeholder); at != std::string::npos; at = pattern.find(placeholder, at)) {
    pattern.replace(at, placeholder.size(), std::to_string(severity));
  }
  return pattern;
}

std::string default_label(const ExperimentConfig& c) {
  std::string label = display_name(c.augmentation) + " + " + display_name(c.method);
  if (c.stages != StageOrder::Full) label += detail::concat(", ", stage_order_name(c.stages));
  if (c.synthetic != data::SyntheticDistribution::Balanced) {
    label += detail::concat(", ", synthetic_distribution_name(c.synthetic), " synthetic");
  }
  return label;
}

std::string known_presets() {
  std::string names;
  for (const Preset& p : presets()) names += (names.empty() ? "" : ", ") + p.name;
  return names;
}

// Messages name the grid file's keys (the CLI checks its flags before this).
void check_options(const GridOptions& o) {
  auto fail = [](const std::string& key, const std::string& what) {
    throw InputError(detail::concat("grid: \"", key, "\": ", what));
  };
  if (o.presets.empty() && o.custom_cells.empty()) {
    fail("presets", "no experiments: give a preset (" + known_presets() + ") or cells in a grid file");
  }
  for (const std::string& p : o.presets) {
    if (!find_preset(p)) fail("presets", detail::concat("unknown preset '", p, "' (expected one of: ", known_presets(), ")"));
  }
  if (o.seeds.empty()) fail("seeds", "empty");
  if (o.learning_rates.empty()) fail("learning_rates", "empty");
  if (o.freeze_batch_norm.empty()) fail("freeze_batch_norm", "empty");
  if (o.bias_ratios.empty()) fail("bias_ratios", "empty");
  auto check_rates = [&](const char* key, const std::vector<double>& rates) {
    for (double lr : rates) {
      if (!(lr > 0.0) || !std::isfinite(lr)) fail(key, detail::concat(lr, " is not a positive number"));
    }
  };
  check_rates("learning_rates", o.learning_rates);
  check_rates("stage1_learning_rates", o.stage1_learning_rates);
  check_rates("ffr_learning_rates", o.ffr_learning_rates);
  auto check_ratios = [&](const std::string& key, const std::vector<double>& ratios) {
    if (ratios.empty()) fail(key, "empty");
    for (double r : ratios) {
      if (!(r > 0.0 && r < 1.0)) fail(key, detail::concat(r, " is not in (0, 1)"));
    }
  };
  check_ratios("bias_ratios", o.bias_ratios);
  for (const auto& [dataset, ratios] : o.bias_ratios_by_dataset) check_ratios("bias_ratios_by_dataset." + dataset, ratios);
  for (int s : o.severities) {
    if (s < 0 || s > 5) fail("severities", detail::concat(s, " is not in 0..5"));
  }
  auto unique = [](auto values) {
    std::sort(values.begin(), values.end());
    return std::adjacent_find(values.begin(), values.end()) == values.end();
  };
  if (!unique(o.seeds)) fail("seeds", "a seed is listed twice");
  if (!unique(o.learning_rates)) fail("learning_rates", "a learning rate is listed twice");
  if (!unique(o.stage1_learning_rates)) fail("stage1_learning_rates", "a learning rate is listed twice");
  if (!unique(o.ffr_learning_rates)) fail("ffr_learning_rates", "a learning rate is listed twice");
  if (!unique(o.bias_ratios)) fail("bias_ratios", "a ratio is listed twice");
  if (!unique(o.severities)) fail("severities", "a severity is listed twice");
  if (!unique(o.freeze_batch_norm)) fail("freeze_batch_norm", "a choice is listed twice");
  if (!unique(o.manifests)) fail("manifests", "a manifest is listed twice");
}

// ---- hashing ----------------------------------------------------------------------------------

// FNV-1a, 64 bits: tiny, and the same on every platform (std::hash is not).
uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string sanitized(const std::string& text, size_t max_length) {
  std::string out;
  for (char c : text) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    out += ok ? c : '_';
  }
  if (out.size() > max_length) out.resize(max_length);
  return out.empty() ? "data" : out;
}

}  // namespace

// ---- names ------------------------------------------------------------------------------------

std::string display_name(data::Augmentation a) {
  switch (a) {
    case data::Augmentation::None: return "None";
    case data::Augmentation::USB: return "USB";
    case data::Augmentation::ASB: return "ASB";
    case data::Augmentation::FFR: return "FFR";
  }
  return "?";
}

std::string display_name(TrainingMethod m) {
  switch (m) {
    case TrainingMethod::ERM: return "ERM";
    case TrainingMethod::Resampling: return "Resampling";
    case TrainingMethod::GroupDRO: return "GroupDRO";
    case TrainingMethod::DFR: return "DFR";
  }
  return "?";
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Preset& p : presets()) n.push_back(p.name);
    return n;
  }();
  return names;
}

std::string preset_description(const std::string& preset) {
  const Preset* p = find_preset(preset);
  return p ? p->description : "";
}

ExperimentConfig paper_base_config() {
  ExperimentConfig c;
  c.model = "resnet50";
  c.image_size = 224;
  return c;
}

std::vector<double> table6_ffr_learning_rates() { return {1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9}; }

std::vector<double> bias_ratios_for(const GridOptions& options, const std::string& dataset) {
  const auto named = options.bias_ratios_by_dataset.find(dataset);
  if (named != options.bias_ratios_by_dataset.end()) return named->second;
  std::string lower = dataset;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (lower.find("spuco") == std::string::npos) return options.bias_ratios;
  // SpuCo Animals' natural bias is ~0.95: a lower ratio cannot be made by dropping minority samples.
  std::vector<double> ratios;
  for (double r : options.bias_ratios) {
    if (r >= 0.95) ratios.push_back(r);
  }
  if (ratios.empty()) {
    throw InputError(detail::concat("grid: \"bias_ratios\": none is >= 0.95, the lowest SpuCo Animals (", dataset,
                                    ") can express; give its own list in \"bias_ratios_by_dataset\" (--dataset-ratios)"));
  }
  return ratios;
}

std::string dataset_name(const std::string& manifest) {
  const fs::path path(manifest);
  std::string stem = path.stem().string();
  if (stem.empty() || stem == "manifest" || stem == "metadata") {
    const std::string folder = path.parent_path().filename().string();
    if (!folder.empty() && folder != "." && folder != "..") return folder;
  }
  return stem.empty() ? "data" : stem;
}

// ---- grid options and grids -------------------------------------------------------------------

GridOptions read_grid_options(const std::string& path, GridOptions o) {
  const json j = parse_json(read_text(path), path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  for (const auto& [key, v] : j.items()) {
    if (key == "presets") o.presets = list_of<std::string>(v, path, key, string_of);
    else if (key == "manifests") o.manifests = list_of<std::string>(v, path, key, string_of);
    else if (key == "bias_ratios") o.bias_ratios = list_of<double>(v, path, key, number_of);
    else if (key == "severities") {
      o.severities.clear();
      for (int64_t s : list_of<int64_t>(v, path, key, integer_of)) o.severities.push_back(int(s));
    }
    else if (key == "seeds") o.seeds = list_of<uint64_t>(v, path, key, unsigned_of);
    else if (key == "learning_rates") o.learning_rates = list_of<double>(v, path, key, number_of);
    else if (key == "stage1_learning_rates") o.stage1_learning_rates = list_of<double>(v, path, key, number_of);
    else if (key == "ffr_learning_rates") o.ffr_learning_rates = list_of<double>(v, path, key, number_of);
    else if (key == "bias_ratios_by_dataset") {
      if (!v.is_object()) bad_value(path, key, "expected an object of data set name -> list of ratios");
      o.bias_ratios_by_dataset.clear();
      for (const auto& [dataset, ratios] : v.items()) {
        o.bias_ratios_by_dataset[dataset] = list_of<double>(ratios, path, key + "." + dataset, number_of);
      }
    }
    else if (key == "freeze_batch_norm") o.freeze_batch_norm = list_of<bool>(v, path, key, bool_of);
    else if (key == "vit_model") o.vit_model = string_of(v, path, key);
    else if (key == "base") o.base = with_overrides(o.base, v, path + ": \"base\"");
    else if (key == "cells") {
      if (!v.is_array()) bad_value(path, key, "expected a list of objects");
      for (const json& cell : v) {
        if (!cell.is_object()) bad_value(path, key, "expected a list of objects, got " + cell.dump());
        // Checked now, so a typo names the file rather than surfacing later.
        json overrides = cell;
        overrides.erase("experiment");
        overrides.erase("label");
        with_overrides(ExperimentConfig{}, overrides, path + ": \"cells\"");
        o.custom_cells.push_back(cell.dump());
      }
    }
    else bad_value(path, key, "unknown key (expected presets, manifests, bias_ratios, bias_ratios_by_dataset, "
                              "severities, seeds, learning_rates, stage1_learning_rates, ffr_learning_rates, "
                              "freeze_batch_norm, vit_model, base, cells)");
  }
  // A grid file that fixes stage 1's rate in "base" (as files written before the search did) keeps
  // it fixed unless it lists rates to search.
  if (!j.contains("stage1_learning_rates") && j.contains("base") && j["base"].contains("stage1_learning_rate")) {
    o.stage1_learning_rates = {o.base.stage1_learning_rate};
  }
  return o;
}

Grid make_grid(const GridOptions& o) {
  check_options(o);
  std::vector<std::string> plain_manifests, patterns;
  for (const std::string& m : o.manifests) (is_pattern(m) ? patterns : plain_manifests).push_back(m);

  Grid grid;
  grid.seeds = o.seeds;
  grid.learning_rates = o.learning_rates;
  grid.freeze_batch_norm = o.freeze_batch_norm;
  grid.stage1_learning_rates = o.stage1_learning_rates.empty() ? o.learning_rates : o.stage1_learning_rates;
  grid.ffr_learning_rates = o.ffr_learning_rates;

  auto add_cell = [&](const std::string& experiment, const std::string& label, const std::string& manifest,
                      int severity, ExperimentConfig config) {
    config.manifest = manifest;
    config.seed = 0;
    config.learning_rate = o.learning_rates.front();
    config.freeze_batch_norm = false;
    // One stage-1 rate: no search, every cell trains stage 1 at it.
    if (grid.stage1_learning_rates.size() == 1) config.stage1_learning_rate = grid.stage1_learning_rates.front();
    grid.cells.push_back({experiment, label, dataset_name(manifest), severity, config});
  };

  for (const std::string& name : o.presets) {
    const Preset& preset = *find_preset(name);
    // (manifest, severity) pairs the preset runs on.
    std::vector<std::pair<std::string, int>> datasets;
    if (preset.uses_severity_pattern) {
      if (patterns.empty()) {
        throw InputError(detail::concat("grid: \"manifests\": ", name, " needs a manifest pattern holding ", kSeverityPlaceholder,
                                        " (one manifest per severity, e.g. data/sev", kSeverityPlaceholder,
                                        "/manifest.csv)"));
      }
      if (o.severities.empty()) throw InputError("grid: \"severities\": " + name + " needs at least one severity");
      for (const std::string& p : patterns) {
        for (int s : o.severities) datasets.emplace_back(with_severity(p, s), s);
      }
    } else {
      if (plain_manifests.empty()) {
        throw InputError(detail::concat("grid: \"manifests\": ", name, " needs a manifest (", kSeverityPlaceholder,
                                        " patterns serve table4 only)"));
      }
      for (const std::string& m : plain_manifests) datasets.emplace_back(m, -1);
    }
    for (const auto& [manifest, severity] : datasets) {
      for (double ratio : bias_ratios_for(o, dataset_name(manifest))) {
        for (const Variant& v : preset.variants(severity)) {
          ExperimentConfig c = o.base;
          c.bias_ratio = ratio;
          c.augmentation = v.augmentation;
          c.method = v.method;
          c.stages = v.stages;
          c.synthetic = v.synthetic;
          if (name == "table8") c.model = o.vit_model;
          add_cell(name, v.label, manifest, severity, c);
        }
      }
    }
  }

  for (const std::string& text : o.custom_cells) {
    json cell = parse_json(text, "grid cell");
    const std::string experiment = cell.value("experiment", std::string("custom"));
    const std::string label = cell.value("label", std::string());
    cell.erase("experiment");
    cell.erase("label");
    std::vector<std::string> manifests = plain_manifests;
    if (cell.contains("manifest")) manifests = {string_of(cell["manifest"], "grid cell", "manifest")};
    if (manifests.empty()) throw InputError("grid: cell '" + label + "' needs a manifest");
    for (const std::string& manifest : manifests) {
      std::vector<double> ratios = bias_ratios_for(o, dataset_name(manifest));
      if (cell.contains("bias_ratio")) ratios = {number_of(cell["bias_ratio"], "grid cell", "bias_ratio")};
      for (double ratio : ratios) {
        ExperimentConfig c = o.base;
        c.bias_ratio = ratio;
        c = with_overrides(c, cell, "grid cell");
        add_cell(experiment, label.empty() ? default_label(c) : label, manifest, -1, c);
      }
    }
  }
  return grid;
}

std::string grid_to_json(const Grid& grid) {
  json cells = json::array();
  for (const GridCell& cell : grid.cells) {
    json config = result_relevant_json(cell.config);
    for (const char* key : kPerRunKeys) config.erase(key);
    cells.push_back({{"experiment", cell.experiment},
                     {"label", cell.label},
                     {"dataset", cell.dataset},
                     {"severity", cell.severity},
                     {"config", config}});
  }
  const json j = {{"format", kGridFormat},
                  {"seeds", grid.seeds},
                  {"learning_rates", grid.learning_rates},
                  {"freeze_batch_norm", grid.freeze_batch_norm},
                  {"stage1_learning_rates", grid.stage1_learning_rates},
                  {"ffr_learning_rates", grid.ffr_learning_rates},
                  {"cells", cells}};
  return j.dump(2) + "\n";
}

Grid grid_from_json(const std::string& text, const std::string& source) {
  const json j = parse_json(text, source);
  try {
    if (j.value("format", std::string()) != kGridFormat) {
      throw InputError(detail::concat(source, ": not a grid file (\"format\" is not \"", kGridFormat, "\")"));
    }
    Grid grid;
    grid.seeds = j.at("seeds").get<std::vector<uint64_t>>();
    grid.learning_rates = j.at("learning_rates").get<std::vector<double>>();
    grid.freeze_batch_norm = j.at("freeze_batch_norm").get<std::vector<bool>>();
    // Absent from grid files written before the stage-1 search: those grids did not search.
    grid.stage1_learning_rates = j.value("stage1_learning_rates", std::vector<double>{});
    grid.ffr_learning_rates = j.value("ffr_learning_rates", std::vector<double>{});
    for (const json& c : j.at("cells")) {
      GridCell cell;
      cell.experiment = c.at("experiment").get<std::string>();
      cell.label = c.at("label").get<std::string>();
      cell.dataset = c.at("dataset").get<std::string>();
      cell.severity = c.at("severity").get<int>();
      cell.config = config_from_json(c.at("config").dump(), source);
      cell.config.learning_rate = grid.learning_rates.empty() ? cell.config.learning_rate : grid.learning_rates[0];
      grid.cells.push_back(cell);
    }
    return grid;
  } catch (const json::exception& e) {
    throw InputError(detail::concat(source, ": malformed grid file: ", e.what()));
  }
}

// ---- runs -------------------------------------------------------------------------------------

std::vector<HyperParameters> cell_settings(const Grid& grid, const GridCell& cell) {
  const bool tunes_batch_norm =
      cell.config.augmentation == data::Augmentation::FFR && cell.config.stages == StageOrder::Full;
  const std::vector<bool> freeze = tunes_batch_norm ? grid.freeze_batch_norm : std::vector<bool>{false};
  const std::vector<double>& rates =
      tunes_batch_norm && !grid.ffr_learning_rates.empty() ? grid.ffr_learning_rates : grid.learning_rates;
  std::vector<HyperParameters> settings;
  for (double lr : rates) {
    for (bool f : freeze) settings.push_back({lr, f});
  }
  return settings;
}

ExperimentConfig run_config(const GridCell& cell, const HyperParameters& setting, uint64_t seed) {
  ExperimentConfig c = cell.config;
  c.learning_rate = setting.learning_rate;
  if (c.stages == StageOrder::Stage1Only) c.stage1_learning_rate = setting.learning_rate;
  c.freeze_batch_norm = setting.freeze_batch_norm;
  // Meaningless without a frozen BN: cleared, so such runs keep one name whatever the cell says.
  if (!c.freeze_batch_norm) c.freeze_batch_norm_affine = false;
  c.seed = seed;
  return c;
}

std::string run_name(const ExperimentConfig& c) {
  std::string name = sanitized(dataset_name(c.manifest), 40);
  name += detail::concat("-", data::augmentation_name(c.augmentation), "-", method_name(c.method));
  if (c.stages != StageOrder::Full) name += detail::concat("-", stage_order_name(c.stages));
  if (c.synthetic != data::SyntheticDistribution::Balanced) name += detail::concat("-", synthetic_distribution_name(c.synthetic));
  name += "-r" + format_double(c.bias_ratio, "%g");
  name += "-lr" + format_double(c.stages == StageOrder::Stage1Only ? c.stage1_learning_rate : c.learning_rate, "%g");
  if (c.freeze_batch_norm) name += c.freeze_batch_norm_affine ? "-fbn-affine" : "-fbn";
  name += detail::concat("-s", c.seed);
  char hash[16];
  // Canonical text: compact JSON of the result-relevant fields, keys sorted (nlohmann's default),
  // doubles printed round-trip exactly.
  std::snprintf(hash, sizeof hash, "%012" PRIx64, fnv1a(result_relevant_json(c).dump()) >> 16);
  return sanitized(name, 200) + "-" + hash;
}

std::vector<GridRun> plan_runs(const Grid& grid, const RunLookup& completed) {
  std::vector<GridRun> runs;
  // Keyed on the planned name (a pending run's placeholder), so the plan's order and length do
  // not change as stage-1 searches complete.
  std::set<std::string> seen;
  auto add = [&](GridRun run, const std::string& key) {
    if (seen.insert(key).second) runs.push_back(std::move(run));
  };
  std::vector<double> chosen(grid.cells.size(), std::numeric_limits<double>::quiet_NaN());
  for (size_t i = 0; i < grid.cells.size(); ++i) {
    const GridCell& cell = grid.cells[i];
    if (!searches_stage1(grid, cell)) continue;
    for (double rate : grid.stage1_learning_rates) {
      for (uint64_t seed : grid.seeds) {
        GridRun run;
        run.cell = i;
        run.hyper_parameters = {rate, false};
        run.seed = seed;
        run.config = stage1_search_config(cell, rate, seed);
        run.name = run_name(run.config);
        run.stage1_search = true;
        add(run, run.name);
      }
    }
    chosen[i] = choose_stage1_learning_rate(grid, cell, completed);
  }
  for (size_t i = 0; i < grid.cells.size(); ++i) {
    const bool searching = searches_stage1(grid, grid.cells[i]);
    GridCell cell = grid.cells[i];
    if (searching) cell.config.stage1_learning_rate = std::numeric_limits<double>::quiet_NaN();
    for (const HyperParameters& setting : cell_settings(grid, cell)) {
      for (uint64_t seed : grid.seeds) {
        GridRun run;
        run.cell = i;
        run.hyper_parameters = setting;
        run.seed = seed;
        run.config = run_config(cell, setting, seed);
        run.name = run_name(run.config);
        const std::string key = run.name;
        if (searching && std::isfinite(chosen[i])) {
          run.config.stage1_learning_rate = chosen[i];
          run.name = run_name(run.config);
        } else if (searching) {
          run.pending = true;
        }
        add(run, key);
      }
    }
  }
  return runs;
}

RunLookup completed_runs(const std::vector<std::string>& dirs) {
  return [dirs](const std::string& name) -> std::optional<ExperimentResult> {
    for (const std::string& dir : dirs) {
      const std::string path = (fs::path(runs_dir(dir)) / name).string();
      if (has_result(path)) return read_result(path);
    }
    return std::nullopt;
  };
}

Shard parse_shard(const std::string& text) {
  Shard shard;
  char slash = 0, extra = 0;
  std::istringstream in(text);
  const bool parsed = static_cast<bool>(in >> shard.index >> slash >> shard.count) && slash == '/' && !(in >> extra);
  if (!parsed || shard.count < 1 || shard.index < 0 || shard.index >= shard.count) {
    throw InputError(detail::concat("'", text, "' is not a shard i/N with 0 <= i < N (e.g. 0/4 ... 3/4)"));
  }
  return shard;
}

std::vector<GridRun> shard_runs(const std::vector<GridRun>& runs, const Shard& shard) {
  std::vector<GridRun> mine;
  for (size_t k = 0; k < runs.size(); ++k) {
    if (int(k % size_t(shard.count)) == shard.index) mine.push_back(runs[k]);
  }
  return mine;
}

// ---- running and collecting -------------------------------------------------------------------

std::string runs_dir(const std::string& out_dir) { return (fs::path(out_dir) / "runs").string(); }

std::string run_dir(const std::string& out_dir, const GridRun& run) {
  return (fs::path(runs_dir(out_dir)) / run.name).string();
}

std::vector<std::string> check_grid_bias_ratios(const Grid& grid) {
  std::map<std::string, std::set<double>> ratios;  // per manifest
  std::map<std::string, double> agnostic;          // manifests some run draws bias-agnostic data from, at a ratio
  for (const GridRun& run : plan_runs(grid)) {
    ratios[run.config.manifest].insert(run.config.bias_ratio);
    if (run.config.synthetic == data::SyntheticDistribution::BiasAgnostic && run.config.augmentation != data::Augmentation::None) {
      agnostic.emplace(run.config.manifest, run.config.bias_ratio);
    }
  }
  std::vector<std::string> warnings;
  for (const auto& [manifest_path, manifest_ratios] : ratios) {
    const data::Manifest manifest = data::read_manifest(manifest_path);
    for (double ratio : manifest_ratios) {
      data::ProtocolConfig protocol;  // the real splits only: no synthetic set is drawn
      protocol.bias_ratio = ratio;
      const data::ExperimentSplits splits = data::make_experiment_splits(manifest, protocol);
      warnings.insert(warnings.end(), splits.warnings.begin(), splits.warnings.end());
    }
    // Table 5 needs the bias-agnostic pool: refused now, naming the manifest, not at its first run.
    if (const auto it = agnostic.find(manifest_path); it != agnostic.end()) {
      data::ProtocolConfig protocol;
      protocol.bias_ratio = it->second;
      protocol.augmentation = data::Augmentation::FFR;
      protocol.synthetic = data::SyntheticDistribution::BiasAgnostic;
      data::make_experiment_splits(manifest, protocol);
    }
  }
  return warnings;
}

GridRunSummary run_grid(const Grid& grid, const GridRunOptions& options, const RunFunction& run_function,
                        const GridProgressCallback& progress) {
  const auto start = std::chrono::steady_clock::now();
  FFR_CHECK(run_function, "run_grid: no run function");
  fs::create_directories(runs_dir(options.out_dir));
  // Shards sharing one folder all start by writing the same text: only the first needs to.
  const std::string grid_file = (fs::path(options.out_dir) / "grid.json").string();
  const std::string grid_text = grid_to_json(grid);
  if (!fs::is_regular_file(grid_file) || read_text(grid_file) != grid_text) write_text_atomically(grid_file, grid_text);

  std::map<std::string, ExperimentConfig> data_hashes;  // per manifest, hashed once when first needed
  GridRunSummary summary;
  const RunLookup completed = completed_runs({options.out_dir});
  std::set<std::string> handled;  // runs done or read back by an earlier pass
  // Each pass plans again: stage-2 runs whose stage-1 search the previous pass completed are
  // planned with the chosen rate. Passes end when one finds nothing new to do.
  for (bool progressed = true; progressed;) {
    progressed = false;
    const std::vector<GridRun> runs = shard_runs(plan_runs(grid, completed), options.shard);
    summary.runs = int64_t(runs.size());
    summary.pending = std::count_if(runs.begin(), runs.end(), [](const GridRun& r) { return r.pending; });
    for (size_t k = 0; k < runs.size(); ++k) {
      const GridRun& run = runs[k];
      if (run.pending || !handled.insert(run.name).second) continue;
      progressed = true;
      const std::string dir = run_dir(options.out_dir, run);
      GridProgress event;
      event.index = int64_t(k) + 1;
      event.total = summary.runs;
      event.run = &run;
      if (has_result(dir)) {
        const ExperimentResult result = read_run(dir, run.config);
        if (!result.config.manifest_sha256.empty()) {  // older folders recorded no hashes
          auto [known, fresh] = data_hashes.try_emplace(run.config.manifest);
          if (fresh) known->second = with_data_hashes(run.config);
          check_same_data(result.config, known->second, (fs::path(dir) / kResultFile).string(),
                          "delete " + dir + " to rerun it on the current data, or choose a new --out");
        }
        ++summary.resumed;
        event.event = GridProgress::Event::Resumed;
        event.result = &result;
        if (progress) progress(event);
        continue;
      }
      std::shared_ptr<void> claim;
      if (options.claim && !(claim = options.claim(run, dir))) {
        ++summary.held_elsewhere;
        continue;
      }
      event.event = GridProgress::Event::Starting;
      if (progress) progress(event);
      ProgressCallback inner;
      if (progress) {
        inner = [&](const Progress& p) {
          GridProgress running = event;
          running.event = GridProgress::Event::Running;
          running.experiment = &p;
          progress(running);
        };
      }
      ExperimentResult result;
      try {
        result = run_function(run.config, dir, inner);
      } catch (const InputError& e) {
        throw InputError(detail::concat("run ", dir, ": ", e.what()));
      } catch (const std::exception& e) {
        throw Error(detail::concat("run ", dir, ": ", e.what()));
      }
      ++summary.ran;
      event.event = GridProgress::Event::Finished;
      event.result = &result;
      if (progress) progress(event);
    }
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

Grid read_grid(const std::vector<std::string>& dirs) {
  FFR_CHECK(!dirs.empty(), "read_grid: no folders");
  Grid first;
  std::string first_text;
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::string path = (fs::path(dirs[i]) / "grid.json").string();
    if (!fs::is_regular_file(path)) {
      throw InputError(detail::concat(dirs[i], ": no grid.json (not the --out folder of `ffr-bench grid`?)"));
    }
    const Grid grid = grid_from_json(read_text(path), path);
    const std::string text = grid_to_json(grid);
    if (i == 0) {
      first = grid;
      first_text = text;
    } else if (text != first_text) {
      throw InputError(detail::concat(path, ": a different grid from ", dirs[0],
                                      "/grid.json (shards must be run with the same presets, manifests, "
                                      "ratios, seeds, learning rates and training settings)"));
    }
  }
  return first;
}

ResultSet collect_results(const Grid& grid, const std::vector<std::string>& dirs) {
  ResultSet results;
  for (const GridRun& run : plan_runs(grid, completed_runs(dirs))) {
    if (run.pending) continue;
    for (const std::string& dir : dirs) {
      const std::string path = (fs::path(runs_dir(dir)) / run.name).string();
      if (has_result(path)) {
        results.emplace(run.name, read_run(path, run.config));
        break;
      }
    }
  }
  return results;
}

}  // namespace ffr
