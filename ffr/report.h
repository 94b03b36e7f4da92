// From a grid's results to the paper's tables: model selection per cell (the setting with the best
// mean validation WA over seeds), test WA / BA as mean +- std over seeds at that setting, rows
// averaged over data sets and bias ratios as the paper's tables are, and the files a grid leaves:
// report.md, results.csv and SVG plots of WA and BA against the bias ratio.
#pragma once

#include "ffr/grid.h"

#include <string>
#include <vector>

namespace ffr {

// Mean and sample standard deviation (n - 1, the paper's +-); std is 0 when n < 2.
struct MeanStd {
  double mean = 0.0;
  double std = 0.0;
  int n = 0;
};
MeanStd mean_std(const std::vector<double>& values);

struct GroupSummary {
  int y = 0, b = 0;
  MeanStd accuracy;  // test accuracy of the group over seeds
};

// One hyper-parameter setting of a cell, over the seeds that completed.
struct SettingSummary {
  HyperParameters hyper_parameters;
  std::vector<uint64_t> seeds;            // in grid seed order
  std::vector<ExperimentResult> results;  // one per seed
  MeanStd val_wa;                         // what model selection compares
};

struct CellSummary {
  GridCell cell;
  std::vector<SettingSummary> settings;  // in cell_settings order
  int chosen = -1;                       // index into settings; -1 when no run completed
  size_t seeds_planned = 0;
  size_t runs_planned = 0, runs_complete = 0;
  // At the chosen setting, over its seeds; accuracies as fractions in [0, 1].
  MeanStd val_wa, val_ba, test_wa, test_ba;
  MeanStd synthetic_wa, synthetic_ba;    // held-out synthetic test (n = 0 when the runs have none)
  std::vector<GroupSummary> test_groups;
  std::vector<double> dfr_c;             // DFR: the C each seed's head chose (empty for other methods)
  MeanStd dfr_tuning_wa;                 // DFR: that C's WA on val's held-out half
  MeanStd feature_probe;                 // real-vs-synthetic probe accuracy on the models' features (n = 0: none)
  double seconds = 0.0;                  // all completed runs of the cell

  const SettingSummary* chosen_setting() const { return chosen < 0 ? nullptr : &settings[size_t(chosen)]; }
};

// A row of the paper's tables: one label of an experiment averaged over its data sets and bias
// ratios. Per seed, the test metric is averaged over the cells (each at its chosen setting); the
// +- is the sample std of those per-seed averages over the seeds every used cell completed.
struct VariantSummary {
  std::string label;
  size_t first_cell = 0;                 // index into GridSummary::cells, for its config
  size_t cells = 0, cells_used = 0;      // cells_used: those with a chosen setting
  std::vector<uint64_t> seeds;
  MeanStd test_wa, test_ba, synthetic_wa, synthetic_ba;
};

struct ExperimentSummary {
  std::string name;
  std::vector<size_t> cells;             // indices into GridSummary::cells, in grid order
  std::vector<VariantSummary> variants;  // in order of first appearance
};

struct GridSummary {
  Grid grid;
  std::vector<CellSummary> cells;
  std::vector<ExperimentSummary> experiments;
  size_t runs_planned = 0, runs_complete = 0;  // distinct runs
  double compute_seconds = 0.0;                // sum of the completed runs' own times
  std::vector<std::string> devices;            // distinct ExperimentResult::device values
  std::vector<std::string> precisions;         // distinct ExperimentResult::precision values (as run)
};

// Model selection: among the settings whose seeds all completed (or, when none has, those with
// any), the one with the highest mean validation WA; ties go to the earlier setting. -1 if none ran.
int choose_setting(const std::vector<SettingSummary>& settings, size_t seeds_planned);

GridSummary summarize_grid(const Grid& grid, const ResultSet& results);

struct ReportOptions {
  std::string title = "FFR grid report";
  std::vector<std::string> notes;  // extra lines under the title ("merged from 4 shard folders")
  double wall_seconds = -1.0;      // of the grid invocation, when known
};

struct ReportFiles {
  std::string report_md;
  std::string results_csv;
  std::vector<std::string> plots;  // SVG paths
};

// Writes <out>/report.md, <out>/results.csv and the SVG plots (<experiment>-<dataset>-<method>-
// {wa,ba}.svg, for experiments with two or more bias ratios), each file atomically.
ReportFiles write_report(const GridSummary& summary, const std::string& out_dir, const ReportOptions& options = {});

struct GridReport {
  GridSummary summary;
  ReportFiles files;
};

// collect_results over `dirs` (the grid's --out folder, or shard folders), summarize_grid, and
// write_report into `out_dir`.
GridReport report_grid(const Grid& grid, const std::vector<std::string>& dirs, const std::string& out_dir,
                       const ReportOptions& options = {});

// `ffr-bench merge`: the grid of the shard folders (read_grid: they must agree), its grid.json
// copied into `out_dir`, and the report over the runs of every shard.
GridReport merge_grid_folders(const std::vector<std::string>& dirs, const std::string& out_dir,
                              const ReportOptions& options = {});

// The averaged tables as plain text, for the terminal.
std::string format_summary_table(const GridSummary& summary);

}  // namespace ffr
