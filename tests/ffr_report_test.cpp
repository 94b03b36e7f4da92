// ffr/report and ffr/svg_plot: model selection, mean +- std, averaged rows, merging shards, and the
// content of report.md, results.csv and the SVG plots. Results come from a fake run function.
#include "data/csv.h"
#include "data_test_support.h"
#include "engine/atomic_file.h"
#include "engine/build_info.h"
#include "ffr/experiment_json.h"
#include "ffr/report.h"
#include "ffr/svg_plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>

namespace ffr {
namespace {

namespace fs = std::filesystem;
using data::testing::read_file;
using data::testing::TempDir;

// Four groups whose minimum is `wa` and whose mean is `ba` (ba >= wa).
SplitMetrics metrics(double wa, double ba) {
  SplitMetrics m;
  m.worst_group_accuracy = wa;
  m.balanced_accuracy = ba;
  const int64_t total = 1000000;
  const double others = (4 * ba - wa) / 3;
  m.groups = {{0, 0, int64_t(std::llround(wa * total)), total},
              {0, 1, int64_t(std::llround(others * total)), total},
              {1, 0, int64_t(std::llround(others * total)), total},
              {1, 1, int64_t(std::llround(others * total)), total}};
  return m;
}

// Deterministic numbers per config: augmentation mode, ratio, rate and seed all show.
ExperimentResult fake_result(const ExperimentConfig& c) {
  ExperimentResult r;
  r.config = c;
  const double base = 0.40 + 0.10 * int(c.augmentation) - 0.5 * (c.bias_ratio - 0.9) + 0.01 * int(c.method);
  const double lr_effect = c.learning_rate == 1e-5 ? 0.05 : 0.0;  // 1e-5 wins validation everywhere
  const double seed_effect = 0.02 * double(c.seed);
  r.val = metrics(base + lr_effect + seed_effect, 0.85);
  r.test = metrics(base + lr_effect + seed_effect - 0.01, 0.84);
  if (c.augmentation != data::Augmentation::None) r.test_synthetic = metrics(0.3 + seed_effect, 0.7);
  r.seconds = 2.0;
  r.device = "cpu (fake)";
  return r;
}

RunFunction fake_runner() {
  return [](const ExperimentConfig& c, const std::string& dir, const ProgressCallback&) {
    fs::create_directories(dir);
    const ExperimentResult r = fake_result(c);
    write_text_atomically((fs::path(dir) / kResultFile).string(), result_to_json(r));
    return r;
  };
}

GridOptions figure3_options() {
  GridOptions o;
  o.presets = {"figure3"};
  o.manifests = {"data/toy/manifest.csv"};
  o.bias_ratios = {0.9, 0.99, 0.999};
  o.seeds = {0, 1, 2};
  o.learning_rates = {1e-4, 1e-5, 1e-6};
  o.stage1_learning_rates = {1e-4};  // no stage-1 search, trained BN: the plans these tests count
  o.freeze_batch_norm = {false};
  return o;
}

TEST(FfrReport, MeanAndSampleStandardDeviation) {
  const MeanStd m = mean_std({1.0, 2.0, 3.0, 4.0});
  EXPECT_EQ(m.n, 4);
  EXPECT_DOUBLE_EQ(m.mean, 2.5);
  EXPECT_NEAR(m.std, std::sqrt(5.0 / 3.0), 1e-12);  // n - 1 in the denominator, not n
  const MeanStd one = mean_std({0.7});
  EXPECT_EQ(one.n, 1);
  EXPECT_DOUBLE_EQ(one.mean, 0.7);
  EXPECT_EQ(one.std, 0.0);
  EXPECT_EQ(mean_std({}).n, 0);
}

SettingSummary setting(double lr, std::vector<uint64_t> seeds, std::vector<double> val_wa) {
  SettingSummary s;
  s.hyper_parameters.learning_rate = lr;
  s.seeds = std::move(seeds);
  s.val_wa = mean_std(val_wa);
  return s;
}

TEST(FfrReport, LearningRateWithTheBestMeanValidationWAIsChosen) {
  // 1e-4 has the best single seed, 1e-5 the best mean: the mean decides.
  std::vector<SettingSummary> settings = {setting(1e-4, {0, 1, 2}, {0.95, 0.40, 0.40}),
                                          setting(1e-5, {0, 1, 2}, {0.60, 0.62, 0.64}),
                                          setting(1e-6, {0, 1, 2}, {0.50, 0.50, 0.50})};
  EXPECT_EQ(choose_setting(settings, 3), 1);
  // A setting missing seeds is not preferred over complete ones, however good it looks...
  settings.push_back(setting(1e-7, {0}, {0.99}));
  EXPECT_EQ(choose_setting(settings, 3), 1);
  // ...but is used while nothing is complete.
  EXPECT_EQ(choose_setting({setting(1e-4, {0}, {0.3}), setting(1e-5, {1}, {0.4}), setting(1e-6, {}, {})}, 3), 1);
  EXPECT_EQ(choose_setting({setting(1e-4, {}, {})}, 3), -1);
  // Ties keep the earlier setting.
  EXPECT_EQ(choose_setting({setting(1e-4, {0}, {0.5}), setting(1e-5, {0}, {0.5})}, 1), 0);
}

TEST(FfrReport, CellsReportTestMetricsAtTheChosenRate) {
  TempDir dir;
  const Grid grid = make_grid(figure3_options());
  run_grid(grid, {dir.path().string(), {}}, fake_runner());
  const GridSummary s = summarize_grid(grid, collect_results(grid, {dir.path().string()}));
  ASSERT_EQ(s.cells.size(), 12u);
  EXPECT_EQ(s.runs_planned, 12u * 3u * 3u);
  EXPECT_EQ(s.runs_complete, s.runs_planned);
  EXPECT_DOUBLE_EQ(s.compute_seconds, 2.0 * double(s.runs_planned));
  EXPECT_EQ(s.devices, std::vector<std::string>{"cpu (fake)"});
  for (const CellSummary& c : s.cells) {
    ASSERT_NE(c.chosen_setting(), nullptr);
    EXPECT_EQ(c.chosen_setting()->hyper_parameters.learning_rate, 1e-5);
    std::vector<double> wa, ba;
    for (uint64_t seed : {0, 1, 2}) {
      ExperimentConfig k = run_config(c.cell, {1e-5, false}, seed);
      wa.push_back(fake_result(k).test.worst_group_accuracy);
    }
    EXPECT_NEAR(c.test_wa.mean, mean_std(wa).mean, 1e-12);
    EXPECT_NEAR(c.test_wa.std, 0.02, 1e-9);  // seeds 0, 1, 2 step by 0.02: sample std 0.02
    EXPECT_EQ(c.test_wa.n, 3);
    EXPECT_NEAR(c.test_ba.mean, 0.84, 1e-12);
    ASSERT_EQ(c.test_groups.size(), 4u);
    EXPECT_NEAR(c.test_groups[0].accuracy.mean, c.test_wa.mean, 1e-6);
  }
  // Averaged rows: per seed over the 3 ratios, then mean +- sample std over seeds.
  ASSERT_EQ(s.experiments.size(), 1u);
  const VariantSummary& ffr = s.experiments[0].variants[3];
  EXPECT_EQ(ffr.label, "FFR");
  EXPECT_EQ(ffr.cells, 3u);
  EXPECT_EQ(ffr.seeds.size(), 3u);
  const double ratio_mean = (0.0 + 0.09 + 0.099) / 3.0;  // the ratios' offsets from 0.9
  EXPECT_NEAR(ffr.test_wa.mean, 0.40 + 0.30 - 0.5 * ratio_mean + 0.05 + 0.02 - 0.01, 1e-9);
  EXPECT_NEAR(ffr.test_wa.std, 0.02, 1e-9);
}

// Counts elements the way a reader would: balanced tags, one <polyline> per drawn series.
void expect_wellformed_svg(const std::string& svg, size_t polylines) {
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  std::vector<std::string> open;
  const std::regex tag("<(/?)([a-zA-Z]+)[^>]*?(/?)>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[2];
    if ((*it)[1] == "/") {
      ASSERT_FALSE(open.empty()) << "closing </" << name << "> without an opening tag";
      EXPECT_EQ(open.back(), name);
      open.pop_back();
    } else if ((*it)[3] != "/") {
      open.push_back(name);
    }
  }
  EXPECT_TRUE(open.empty()) << "unclosed <" << (open.empty() ? "" : open.back()) << ">";
  size_t count = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++count;
  EXPECT_EQ(count, polylines);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

// DFR's protocol: the backbone (here its learning rate) is chosen by the ERM backbone's own val WA,
// not by the val WA of the head refitted on val (in-sample). The fake makes the two disagree.
TEST(FfrReport, DfrSelectsTheBackboneByItsOwnValidationWa) {
  TempDir dir;
  GridOptions o = figure3_options();
  o.presets = {"table4x4"};
  o.bias_ratios = {0.9};
  o.seeds = {0, 1};
  o.learning_rates = {1e-4, 1e-5};
  const Grid grid = make_grid(o);
  run_grid(grid, {dir.path().string(), {}}, [](const ExperimentConfig& c, const std::string& run_dir, const ProgressCallback&) {
    fs::create_directories(run_dir);
    ExperimentResult r = fake_result(c);  // val WA favours 1e-5
    if (c.method == TrainingMethod::DFR) {
      r.backbone_val = metrics(c.learning_rate == 1e-4 ? 0.9 : 0.2, 0.95);  // the backbone favours 1e-4
      r.dfr_c = 1.0;
      r.dfr_refits = 20;
    }
    write_text_atomically((fs::path(run_dir) / kResultFile).string(), result_to_json(r));
    return r;
  });
  const GridSummary s = summarize_grid(grid, collect_results(grid, {dir.path().string()}));
  int dfr_cells = 0;
  for (const CellSummary& c : s.cells) {
    ASSERT_NE(c.chosen_setting(), nullptr);
    const bool dfr = c.cell.config.method == TrainingMethod::DFR;
    dfr_cells += dfr;
    EXPECT_EQ(c.chosen_setting()->hyper_parameters.learning_rate, dfr ? 1e-4 : 1e-5) << c.cell.label;
    if (dfr) {
      EXPECT_EQ(c.chosen_setting()->results[0].dfr_refits, 20) << "read back from result.json";
    }
  }
  EXPECT_EQ(dfr_cells, 4);
}

// DFR's chosen regularisation C and its tuning WA reach the report and results.csv (issue 17,
// item 6); other methods leave those fields empty.
TEST(FfrReport, DfrCAndTuningWaAreReported) {
  TempDir dir;
  GridOptions o = figure3_options();
  o.presets = {"table4x4"};
  o.bias_ratios = {0.9};
  o.seeds = {0, 1};
  o.learning_rates = {1e-5};
  const Grid grid = make_grid(o);
  run_grid(grid, {dir.path().string(), {}}, [](const ExperimentConfig& c, const std::string& run_dir, const ProgressCallback&) {
    fs::create_directories(run_dir);
    ExperimentResult r = fake_result(c);
    if (c.method == TrainingMethod::DFR) {
      r.dfr_c = c.seed == 0 ? 0.3 : 1.0;
      r.dfr_tuning_worst_group_accuracy = r.val.worst_group_accuracy;
    }
    write_text_atomically((fs::path(run_dir) / kResultFile).string(), result_to_json(r));
    return r;
  });
  const GridReport report = report_grid(grid, {dir.path().string()}, dir.path().string(), {});
  const std::string md = read_file(report.files.report_md);
  EXPECT_NE(md.find("DFR C 0.3, 1"), std::string::npos) << md;
  const std::vector<data::CsvRecord> csv = data::parse_csv(read_file(report.files.results_csv), "results.csv");
  const std::vector<std::string>& header = csv[0].fields;
  const size_t method = size_t(std::find(header.begin(), header.end(), "method") - header.begin());
  const size_t dfr_c = size_t(std::find(header.begin(), header.end(), "dfr_c") - header.begin());
  const size_t tuning = size_t(std::find(header.begin(), header.end(), "dfr_tuning_wa_mean") - header.begin());
  ASSERT_LT(dfr_c, header.size());
  ASSERT_LT(tuning, header.size());
  int dfr_rows = 0;
  for (size_t row = 1; row < csv.size(); ++row) {
    const bool dfr = csv[row].fields[method] == "dfr";
    dfr_rows += dfr;
    EXPECT_EQ(csv[row].fields[dfr_c], dfr ? "0.3;1" : "") << row;
    EXPECT_EQ(csv[row].fields[tuning].empty(), !dfr) << row;
  }
  EXPECT_EQ(dfr_rows, 4);
}

TEST(FfrReport, ReportCsvAndPlotsHoldTheTables) {
  TempDir dir;
  const Grid grid = make_grid(figure3_options());
  run_grid(grid, {dir.path().string(), {}}, fake_runner());
  ReportOptions options;
  options.wall_seconds = 12.0;
  const GridReport report = report_grid(grid, {dir.path().string()}, dir.path().string(), options);

  const std::string md = read_file(report.files.report_md);
  EXPECT_NE(md.find("## figure3: None / USB / ASB / FFR with ERM"), std::string::npos);
  EXPECT_NE(md.find("sample standard deviation (n − 1)"), std::string::npos);
  EXPECT_NE(md.find("Device: cpu (fake)"), std::string::npos);
  EXPECT_NE(md.find("Runs: 108 of 108 complete"), std::string::npos);
  EXPECT_NE(md.find("| row | WA | BA | cells | seeds |"), std::string::npos);
  EXPECT_NE(md.find("| data set | ratio | row | WA | BA | val WA | chosen | seeds |"), std::string::npos);
  EXPECT_NE(md.find("| toy | 0.999 | FFR | "), std::string::npos);
  EXPECT_NE(md.find("| 1e-05 | 3/3 |"), std::string::npos);
  EXPECT_NE(md.find("±"), std::string::npos);
  EXPECT_NE(md.find("### Per-group test accuracy of the best row"), std::string::npos);
  EXPECT_NE(md.find("![figure3-toy-erm-wa.svg](figure3-toy-erm-wa.svg)"), std::string::npos);
  EXPECT_EQ(md.find(" *"), std::string::npos);  // nothing incomplete
  // FFR's averaged row: 0.40 + 0.30 - 0.5 * mean ratio offset + 0.05 + 0.02 (seed mean) - 0.01.
  char ffr_row[96];
  std::snprintf(ffr_row, sizeof ffr_row, "| FFR | %.1f ± 2.0 | 84.0 ± 0.0 | 3/3 | 3 |",
                100 * (0.40 + 0.30 - 0.5 * (0.0 + 0.09 + 0.099) / 3.0 + 0.05 + 0.02 - 0.01));
  EXPECT_NE(md.find(ffr_row), std::string::npos) << md;

  const std::vector<data::CsvRecord> csv = data::parse_csv(read_file(report.files.results_csv), "results.csv");
  ASSERT_EQ(csv.size(), 1u + 12u);
  const std::vector<std::string>& header = csv[0].fields;
  auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name;
    return size_t(it - header.begin());
  };
  for (size_t row = 1; row < csv.size(); ++row) {
    ASSERT_EQ(csv[row].fields.size(), header.size());
    EXPECT_EQ(csv[row].fields[column("experiment")], "figure3");
    EXPECT_EQ(csv[row].fields[column("learning_rate")], "1e-05");
    EXPECT_EQ(csv[row].fields[column("seeds")], "3");
    EXPECT_NEAR(std::stod(csv[row].fields[column("test_wa_std")]), 0.02, 1e-6);
    EXPECT_NE(csv[row].fields[column("val_wa_by_setting")].find("1e-06="), std::string::npos);
  }
  EXPECT_EQ(csv[1].fields[column("augmentation")], "none");
  EXPECT_EQ(csv[1].fields[column("bias_ratio")], "0.9");

  ASSERT_EQ(report.files.plots.size(), 2u);  // WA and BA for the one (data set, method)
  for (const std::string& plot : report.files.plots) {
    const std::string svg = read_file(plot);
    expect_wellformed_svg(svg, 4);  // None, USB, ASB, FFR
    for (const char* text : {">None<", ">FFR<", ">0.999<", ">bias ratio<"}) {
      EXPECT_NE(svg.find(text), std::string::npos) << text;
    }
  }
}

// report.md says what the numbers were produced with, not only the numbers.
TEST(FfrReport, ReportStatesItsSettingsAndTheEngineBuild) {
  TempDir dir;
  GridOptions options = figure3_options();
  options.base.model = "resnet_tiny";
  options.base.image_size = 0;  // the paper presets' default is 224 px
  options.base.epochs = 7;
  options.base.stage1_epochs = 3;
  options.base.batch_size = 48;
  options.base.max_train_samples = 500;
  const Grid grid = make_grid(options);
  run_grid(grid, {dir.path().string(), {}}, fake_runner());
  const GridReport report = report_grid(grid, {dir.path().string()}, dir.path().string(), {});
  const std::string md = read_file(report.files.report_md);
  for (const std::string& text : std::vector<std::string>{"## Settings", "- Model: resnet_tiny\n", "- Epochs (fine-tuning or only stage): 7; FFR stage 1: 3\n",
        "- Batch size: 48\n", "- Image size: the manifest's\n", "- Max train samples: 500\n",
        "- Learning-rate grid: 1e-04, 1e-05, 1e-06", "- Seeds: 0, 1, 2\n", "- Initial weights: random",
        "## Engine", "- git_commit: " + build_info().git_commit + "\n", "- openblas: "}) {
    EXPECT_NE(md.find(text), std::string::npos) << text << "\n" << md;
  }
}

TEST(FfrReport, MergedShardsGiveTheUnshardedReport) {
  TempDir dir;
  GridOptions o = figure3_options();
  o.presets = {"figure3", "table4x4"};
  o.bias_ratios = {0.9, 0.99};
  o.learning_rates = {1e-4, 1e-5};
  o.seeds = {0, 1};
  const Grid grid = make_grid(o);
  const std::string whole = (dir / "whole").string();
  run_grid(grid, {whole, {}}, fake_runner());
  const GridReport unsharded = report_grid(grid, {whole}, whole);

  std::vector<std::string> shards;
  for (int i = 0; i < 3; ++i) {
    shards.push_back((dir / ("shard" + std::to_string(i))).string());
    run_grid(grid, {shards.back(), {i, 3}}, fake_runner());
  }
  const std::string merged_dir = (dir / "merged").string();
  const GridReport merged = merge_grid_folders(shards, merged_dir);
  EXPECT_EQ(read_file(merged.files.report_md), read_file(unsharded.files.report_md));
  EXPECT_EQ(read_file(merged.files.results_csv), read_file(unsharded.files.results_csv));
  ASSERT_EQ(merged.files.plots.size(), unsharded.files.plots.size());
  for (size_t i = 0; i < merged.files.plots.size(); ++i) {
    EXPECT_EQ(fs::path(merged.files.plots[i]).filename(), fs::path(unsharded.files.plots[i]).filename());
    EXPECT_EQ(read_file(merged.files.plots[i]), read_file(unsharded.files.plots[i]));
  }
  EXPECT_EQ(read_file(fs::path(merged_dir) / "grid.json"), read_file(fs::path(whole) / "grid.json"));

  // One shard alone: a partial report that says so.
  const GridReport partial = merge_grid_folders({shards[0]}, (dir / "partial").string());
  EXPECT_LT(partial.summary.runs_complete, partial.summary.runs_planned);
  EXPECT_NE(read_file(partial.files.report_md).find("Rows marked * miss runs"), std::string::npos);

  const std::string md = read_file(unsharded.files.report_md);
  EXPECT_NE(md.find("| WA / BA | ERM | Resampling | GroupDRO | DFR |"), std::string::npos);
  EXPECT_NE(md.find("## table4x4"), std::string::npos);
  EXPECT_NE(format_summary_table(unsharded.summary).find("FFR + GroupDRO"), std::string::npos);
}

// Issue 19, point 6: the probe of the trained models' features, per augmentation mode; a run
// shared by several experiments' rows counts once.
TEST(FfrReport, FeatureProbeAccuracyIsReportedPerAugmentationMode) {
  TempDir dir;
  GridOptions o = figure3_options();
  o.presets = {"figure3", "table3"};  // table3's USB/ASB/FFR rows share figure3's runs
  o.bias_ratios = {0.9};
  o.seeds = {0, 1};
  o.learning_rates = {1e-5};
  const Grid grid = make_grid(o);
  run_grid(grid, {dir.path().string(), {}}, [](const ExperimentConfig& c, const std::string& run_dir, const ProgressCallback&) {
    fs::create_directories(run_dir);
    ExperimentResult r = fake_result(c);
    r.feature_probe_accuracy = c.augmentation == data::Augmentation::FFR ? 0.6 + 0.1 * double(c.seed) : 0.9;
    write_text_atomically((fs::path(run_dir) / kResultFile).string(), result_to_json(r));
    return r;
  });
  const std::string md = read_file(report_grid(grid, {dir.path().string()}, dir.path().string(), {}).files.report_md);
  EXPECT_NE(md.find("## Real vs synthetic in the trained models' features (probe-features)"), std::string::npos) << md;
  EXPECT_NE(md.find("| USB | 90.0 ± 0.0 | 2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| FFR | 65.0 ± 7.1 | 2 |"), std::string::npos) << md;
}

TEST(FfrReport, Table3ShowsRealAndSyntheticColumns) {
  TempDir dir;
  GridOptions o = figure3_options();
  o.presets = {"table3"};
  o.bias_ratios = {0.99};
  const Grid grid = make_grid(o);
  run_grid(grid, {dir.path().string(), {}}, fake_runner());
  const GridReport report = report_grid(grid, {dir.path().string()}, dir.path().string());
  const std::string md = read_file(report.files.report_md);
  EXPECT_NE(md.find("| WA | BA | WA synthetic | BA synthetic |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 32.0 ± 2.0 | 70.0 ± 0.0 |"), std::string::npos) << md;
  EXPECT_TRUE(report.files.plots.empty());  // one ratio: nothing to plot against
}

TEST(FfrReport, SvgPlotDrawsOneLinePerSeriesWithData) {
  LinePlot plot;
  plot.title = "WA <&> \"quoted\"";
  plot.x_label = "bias ratio";
  plot.y_label = "WA (%)";
  plot.x_ticks = {"0.9", "0.95", "0.99"};
  plot.series = {{"None", {60, 50, 40}, {2, 2, 2}},
                 {"FFR", {80, std::nan(""), 78}, {}},
                 {"empty", {std::nan(""), std::nan(""), std::nan("")}, {}}};
  plot.y_lower_bound = 0;
  plot.y_upper_bound = 100;
  const std::string svg = render_svg(plot);
  expect_wellformed_svg(svg, 2);
  EXPECT_NE(svg.find("WA &lt;&amp;&gt; &quot;quoted&quot;"), std::string::npos);
  EXPECT_EQ(svg.find(">empty<"), std::string::npos);  // no data, no legend entry
  // The gap: FFR's line joins its two points.
  const std::regex ffr_line("<polyline[^>]*points=\"([^\"]*)\"><title>FFR</title>");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, ffr_line));
  EXPECT_EQ(std::count(m[1].first, m[1].second, ','), 2);
  // None's error bars: a vertical line and two caps per point.
  const std::regex none_group("<g stroke=\"[^\"]*\" fill=\"[^\"]*\">\n((<line[^\n]*\n){9})<polyline");
  EXPECT_TRUE(std::regex_search(svg, none_group)) << svg;
}

}  // namespace
}  // namespace ffr
