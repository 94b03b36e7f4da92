// Grids: the paper's experiments as lists of cells x hyper-parameter settings x seeds, run one
// folder per (cell, setting, seed) so a grid can be resumed, split into shards across machines
// and merged. Model selection (the learning rate, and for FFR whether BN is frozen in stage 2) is
// made per cell by mean validation WA over seeds; ffr/report.h turns the results into tables.
//
// On disk (DESIGN.md): <out>/grid.json (the expanded grid, so `merge` needs no flags), and
// <out>/runs/<run name>/ with run_experiment's files; result.json there means "complete".
#pragma once

#include "ffr/experiment.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ffr {

// One row of an experiment: everything about a run but the seed and the tuned hyper-parameters.
struct GridCell {
  std::string experiment;   // "figure3", "table1", ... or a custom name from a grid file
  std::string label;        // the row's name inside its experiment: "FFR", "USB + GroupDRO", "stage 1 only"
  std::string dataset;      // short name of the manifest ("spurious-fashion-mnist")
  int severity = -1;        // table4: corruption severity of the synthetic images; -1 elsewhere
  ExperimentConfig config;  // seed, learning_rate and freeze_batch_norm are set per run
};

// What model selection chooses between, per cell.
struct HyperParameters {
  double learning_rate = 1e-4;
  bool freeze_batch_norm = false;  // FFR stage 2 only
};

struct Grid {
  std::vector<GridCell> cells;
  std::vector<uint64_t> seeds;
  std::vector<double> learning_rates;
  // Tried in full-FFR cells only (the paper tunes it per dataset and ratio: {false, true});
  // every other cell runs with false.
  std::vector<bool> freeze_batch_norm{false};
  // FFR stage 1's learning rates. Two or more: searched in every full-FFR cell, as the authors do
  // (ffr/stage1_search.h): stage-1-only runs at each rate and seed, the rate with the best mean
  // stage-1 val WA chosen, then stage 2's settings run from it. One or none: no search, the
  // cells' own stage1_learning_rate.
  std::vector<double> stage1_learning_rates;
  // Stage 2's learning rates in full-FFR cells (the paper's Table 6 went to 1e-9 there); empty:
  // learning_rates.
  std::vector<double> ffr_learning_rates;
};

// The paper's spelling, for tables: "None", "USB", "ASB", "FFR"; "ERM", "Resampling", "GroupDRO", "DFR".
std::string display_name(data::Augmentation augmentation);
std::string display_name(TrainingMethod method);

// ---- building grids ------------------------------------------------------------------------

// The paper's experiments, by name: figure3, table4x4, table1, table2, table3, table4, table5,
// table8 (see docs/grid.md for what each holds).
const std::vector<std::string>& preset_names();
std::string preset_description(const std::string& preset);  // one line; "" for unknown names

// An ExperimentConfig with the paper's backbone: resnet50, 224 px.
ExperimentConfig paper_base_config();

// The paper's Table 6 learning rates for FFR's stage 2: {1e-4, ..., 1e-9}.
std::vector<double> table6_ffr_learning_rates();

// What a grid is made of, from a grid file (read_grid_options) and/or flags.
struct GridOptions {
  std::vector<std::string> presets;
  // One manifest per data set. Manifests holding "{severity}" are patterns, expanded over
  // `severities` for table4 (and used by table4 only); the others serve every other preset.
  std::vector<std::string> manifests;
  std::vector<double> bias_ratios{0.9, 0.95, 0.97, 0.99, 0.999};
  // Per data set (dataset_name of its manifest), replacing bias_ratios for it. Without an entry, a
  // data set named like SpuCo Animals ("spuco" in its name) drops the ratios below its natural
  // bias, 0.95 (the paper runs 0.9 on CelebA-HQ and UTK-Face only): bias_ratios_for.
  std::map<std::string, std::vector<double>> bias_ratios_by_dataset;
  std::vector<int> severities{0, 1, 2, 3, 4, 5};
  std::vector<uint64_t> seeds{0, 1, 2};
  std::vector<double> learning_rates{1e-4, 1e-5, 1e-6, 1e-7};
  // FFR stage 1's rates (Grid::stage1_learning_rates); empty: learning_rates, searched (the paper).
  std::vector<double> stage1_learning_rates;
  // Stage 2's rates in full-FFR cells (Grid::ffr_learning_rates); table6_ffr_learning_rates() is the
  // paper's Table 6 grid. Empty: learning_rates.
  std::vector<double> ffr_learning_rates;
  // The paper's: both (stage 2 with BN trained, and with BN statistics frozen).
  std::vector<bool> freeze_batch_norm{false, true};
  std::string vit_model = "vit_b32";  // table8's backbone
  // model, epochs, batch size, device ... shared by all cells. The paper's backbone by default:
  // resnet50 at 224 px (pass its ImageNet weights as init_weights); CPU runs name a small model.
  ExperimentConfig base = paper_base_config();
  // Extra cells from a grid file, each a JSON object of overrides of `base` (config.json's keys
  // plus "experiment" and "label"), expanded over the plain manifests and the ratios unless it
  // sets "manifest" / "bias_ratio" itself.
  std::vector<std::string> custom_cells;
};

// Reads a grid file (JSON, keys as GridOptions; see docs/grid.md) over `defaults`. Unknown keys
// and bad values throw InputError naming the file and the key.
GridOptions read_grid_options(const std::string& path, GridOptions defaults = {});

// The bias ratios a data set runs at (see GridOptions::bias_ratios_by_dataset).
std::vector<double> bias_ratios_for(const GridOptions& options, const std::string& dataset);

// Expands presets and custom cells. Throws InputError on an unknown preset, a missing manifest
// pattern for table4, empty lists or out-of-range values.
Grid make_grid(const GridOptions& options);

// The short name of a data set, from its manifest path: the file's stem, or its folder's name
// when the stem says nothing ("manifest").
std::string dataset_name(const std::string& manifest);

// grid.json: the grid without execution settings (device, precision, loader workers), so shards run on
// different machines write identical files. Throws InputError naming `source` when malformed.
std::string grid_to_json(const Grid& grid);
Grid grid_from_json(const std::string& text, const std::string& source);

// ---- the runs of a grid --------------------------------------------------------------------

struct GridRun {
  size_t cell = 0;          // first cell (in grid order) that needs this run
  HyperParameters hyper_parameters;
  uint64_t seed = 0;
  ExperimentConfig config;  // complete: the cell's config with the setting and seed applied
  std::string name;         // folder name under <out>/runs: readable parts + a hash of the config
  bool stage1_search = false;  // a run of an FFR cell's stage-1 search (stage 1 only, ERM)
  // A stage-2 run whose cell's stage-1 search is not complete yet: its config's stage-1 rate is
  // NaN and it cannot run (its name is a placeholder). Planned all the same, so the plan's order
  // and shards do not move as searches complete.
  bool pending = false;
};

// A completed run's result by run name (nullopt when not complete): what the stage-1 choice is
// made from.
using RunLookup = std::function<std::optional<ExperimentResult>(const std::string& run_name)>;

// The settings a cell tries: learning rates (ffr_learning_rates in full-FFR cells) x (full-FFR
// cells only) freeze-BN choices.
std::vector<HyperParameters> cell_settings(const Grid& grid, const GridCell& cell);

// The cell's config for one setting and seed. For stage-1-only cells the learning rate is the
// stage-1 one (that is the stage that trains).
ExperimentConfig run_config(const GridCell& cell, const HyperParameters& setting, uint64_t seed);

// Stable folder name of a run: "<dataset>-<aug>-<method>[-<stages>][-<synthetic>]-r<ratio>-lr<lr>
// [-fbn]-s<seed>-<12 hex digits>", the hash over every field that can change the result
// (not device or loader workers). Equal configs give equal names, on any machine.
std::string run_name(const ExperimentConfig& config);

// Every run of the grid once (cells of different experiments may share runs): first the stage-1
// search runs of every searching cell, then per cell, setting and seed. A searching cell's
// stage-2 runs use the stage-1 rate chosen from `completed`; without a choice yet they are
// `pending`.
std::vector<GridRun> plan_runs(const Grid& grid, const RunLookup& completed = {});

// A lookup of the completed runs under <dir>/runs of each of `dirs` (the first that has it).
RunLookup completed_runs(const std::vector<std::string>& dirs);

struct Shard {
  int index = 0;  // 0-based
  int count = 1;
};
// "i/N" with 0 <= i < N. Throws InputError quoting the text.
Shard parse_shard(const std::string& text);
// Run k of the plan goes to shard k mod N: deterministic, disjoint, and the shards together hold
// every run; consecutive runs (the seeds and settings of one cell) spread over machines.
std::vector<GridRun> shard_runs(const std::vector<GridRun>& runs, const Shard& shard);

// ---- running and collecting --------------------------------------------------------------

// run_experiment's signature: the product passes run_experiment, tests a fake that writes
// deterministic results.
using RunFunction = std::function<ExperimentResult(const ExperimentConfig&, const std::string& run_dir,
                                                   const ProgressCallback&)>;

struct GridProgress {
  enum class Event { Starting, Resumed, Running, Finished };
  Event event = Event::Starting;
  int64_t index = 0, total = 0;           // 1-based position in this shard's runs
  const GridRun* run = nullptr;
  const Progress* experiment = nullptr;   // Running: the run's own progress (epoch, step, ...)
  const ExperimentResult* result = nullptr;  // Resumed, Finished
};
using GridProgressCallback = std::function<void(const GridProgress&)>;

struct GridRunOptions {
  std::string out_dir;
  Shard shard;
  // Set when several workers share the folder (ffr/grid_workers.h): asked before a run without
  // result.json starts; null means another worker holds the run, which is skipped (counted in
  // held_elsewhere). What it returns is held until the run ends (its destructor releases the claim).
  std::function<std::shared_ptr<void>(const GridRun& run, const std::string& run_dir)> claim;
};

struct GridRunSummary {
  int64_t runs = 0;      // in this shard
  int64_t pending = 0;   // stage-2 runs still waiting for a stage-1 search (of another shard)
  int64_t ran = 0;       // done now
  int64_t resumed = 0;   // already complete (result.json present), read back
  int64_t held_elsewhere = 0;  // with a claim function: skipped, another worker holds them
  double seconds = 0.0;  // wall time of this call
};

// Checks every (manifest, bias ratio) of the grid's runs against its data before any run starts
// (data/protocol.h): InputError for a ratio a manifest cannot express, naming both, or for a
// manifest some bias-agnostic run needs a class-only-prompt pool from and that has none; returns
// the warnings for ratios it expresses only approximately. Reads each manifest once.
std::vector<std::string> check_grid_bias_ratios(const Grid& grid);

// Writes <out>/grid.json, then runs this shard's runs in plan order, planning again after each
// pass so stage-2 runs follow the stage-1 searches done (until a pass runs nothing new); the
// stage-2 runs whose search is left to another shard stay pending (rerun after that shard). A run whose folder holds
// result.json (has_result) is read back with read_result, not redone (unless it was run on other
// data: check_same_data refuses it, naming the file that changed); any other folder is handed
// to `run` (run_experiment cleans an incomplete one). A failing run stops the grid with an error
// naming its folder; the runs finished before it stay done.
GridRunSummary run_grid(const Grid& grid, const GridRunOptions& options, const RunFunction& run,
                        const GridProgressCallback& progress = {});

std::string runs_dir(const std::string& out_dir);                          // <out>/runs
std::string run_dir(const std::string& out_dir, const GridRun& run);       // <out>/runs/<name>

// Reads <dir>/grid.json of every folder and checks they describe the same grid (shards of one
// grid); InputError naming the folder that differs or lacks grid.json.
Grid read_grid(const std::vector<std::string>& dirs);

// Completed results (read_result), by run name, of the grid's runs found under any of `dirs`
// (<dir>/runs/<name>; the first folder that has a run wins).
using ResultSet = std::map<std::string, ExperimentResult>;
ResultSet collect_results(const Grid& grid, const std::vector<std::string>& dirs);

}  // namespace ffr
