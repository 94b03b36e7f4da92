// ffr/grid: presets, run names, the run plan, shards, resuming and grid files. Runs go through a
// fake run function that writes a deterministic result.json, so nothing here trains.
#include "data_test_support.h"
#include "engine/atomic_file.h"
#include "ffr/experiment_json.h"
#include "ffr/grid.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

namespace ffr {
namespace {

namespace fs = std::filesystem;
using data::testing::expect_input_error;
using data::testing::TempDir;

// A result whose metrics depend only on the config (so reruns and shards agree).
ExperimentResult fake_result(const ExperimentConfig& c) {
  ExperimentResult r;
  r.config = c;
  const double wa = 0.5 + 0.1 * int(c.augmentation) + 0.01 * double(c.seed) - 0.02 * std::log10(c.learning_rate);
  r.val.worst_group_accuracy = r.test.worst_group_accuracy = wa / 2;
  r.val.balanced_accuracy = r.test.balanced_accuracy = wa / 2 + 0.2;
  r.test.groups = {{0, 0, 1, 2}, {0, 1, 2, 2}};
  r.seconds = 1.5;
  r.device = "cpu (fake)";
  return r;
}

// Counts calls; writes result.json as run_experiment does (atomically, last).
struct FakeRunner {
  std::vector<std::string> ran;
  RunFunction function() {
    return [this](const ExperimentConfig& c, const std::string& dir, const ProgressCallback& progress) {
      ran.push_back(dir);
      fs::create_directories(dir);
      if (progress) progress(Progress{"train", 1, 1, 1, 1, 0.0, 0.0, 0.5});
      const ExperimentResult r = fake_result(c);
      write_text_atomically((fs::path(dir) / kResultFile).string(), result_to_json(r));
      return r;
    };
  }
};

GridOptions small_options(std::vector<std::string> presets) {
  GridOptions o;
  o.presets = std::move(presets);
  o.manifests = {"data/toy/manifest.csv"};
  o.bias_ratios = {0.9, 0.99};
  o.seeds = {0, 1};
  o.learning_rates = {1e-4, 1e-5};
  // The counting tests below predate the stage-1 search and the frozen-BN default: one stage-1
  // rate (no search) and trained BN keep their plans as they were; the search has its own tests.
  o.stage1_learning_rates = {1e-4};
  o.freeze_batch_norm = {false};
  return o;
}

std::vector<std::string> labels_of(const Grid& grid, const std::string& experiment) {
  std::vector<std::string> labels;
  for (const GridCell& c : grid.cells) {
    if (c.experiment == experiment && std::find(labels.begin(), labels.end(), c.label) == labels.end()) {
      labels.push_back(c.label);
    }
  }
  return labels;
}

TEST(FfrGrid, PresetsExpandToThePapersCells) {
  GridOptions o = small_options({"figure3", "table4x4", "table1", "table2", "table3", "table5", "table8"});
  o.manifests.push_back("data/sev{severity}/manifest.csv");
  o.presets.push_back("table4");
  o.severities = {0, 3, 5};
  const Grid grid = make_grid(o);

  EXPECT_EQ(labels_of(grid, "figure3"), (std::vector<std::string>{"None", "USB", "ASB", "FFR"}));
  EXPECT_EQ(labels_of(grid, "table4x4").size(), 16u);
  EXPECT_EQ(labels_of(grid, "table1"), (std::vector<std::string>{"stage 1 only", "stage 2 only", "stage 2 then 1",
                                                                  "stage 1 then 2 (FFR)"}));
  EXPECT_EQ(labels_of(grid, "table3"), (std::vector<std::string>{"USB", "ASB", "FFR"}));
  EXPECT_EQ(labels_of(grid, "table4").size(), 9u);  // 3 modes x 3 severities
  size_t figure3 = 0, table4 = 0;
  for (const GridCell& c : grid.cells) {
    EXPECT_EQ(c.config.manifest.find("{severity}"), std::string::npos);
    if (c.experiment == "figure3") {
      ++figure3;
      EXPECT_EQ(c.config.method, TrainingMethod::ERM);
      EXPECT_EQ(c.dataset, "toy");
    }
    if (c.experiment == "table4") {
      ++table4;
      EXPECT_EQ(c.config.manifest, "data/sev" + std::to_string(c.severity) + "/manifest.csv");
      EXPECT_NE(c.config.augmentation, data::Augmentation::None);
    }
    if (c.experiment == "table2" && c.label == "FFR, biased pretraining") {
      EXPECT_EQ(c.config.synthetic, data::SyntheticDistribution::Biased);
    }
    if (c.experiment == "table5" && c.label == "FFR, bias-agnostic synthetic") {
      EXPECT_EQ(c.config.synthetic, data::SyntheticDistribution::BiasAgnostic);
    }
    if (c.experiment == "table1" && c.label == "stage 2 then 1") EXPECT_EQ(c.config.stages, StageOrder::Stage2Then1);
    // The paper's backbone by default (issue 19): resnet50 at 224 px.
    EXPECT_EQ(c.config.model, c.experiment == "table8" ? "vit_b32" : "resnet50");
    EXPECT_EQ(c.config.image_size, 224);
  }
  EXPECT_EQ(figure3, 4u * 2u);          // modes x ratios
  EXPECT_EQ(table4, 3u * 3u * 2u);      // modes x severities x ratios
}

TEST(FfrGrid, BadOptionsAreNamed) {
  expect_input_error([] { make_grid(small_options({"figure9"})); }, {"presets", "figure9", "figure3"});
  expect_input_error([] { make_grid(small_options({"table4"})); }, {"manifests", "{severity}"});
  GridOptions o = small_options({"figure3"});
  o.seeds = {1, 1};
  expect_input_error([&] { make_grid(o); }, {"seeds", "twice"});
  o = small_options({"figure3"});
  o.bias_ratios = {1.0};
  expect_input_error([&] { make_grid(o); }, {"bias_ratios", "(0, 1)"});
  o = small_options({"figure3"});
  o.learning_rates = {};
  expect_input_error([&] { make_grid(o); }, {"learning_rates"});
}

TEST(FfrGrid, RunNamesAreStableReadableAndDistinct) {
  ExperimentConfig c;
  c.manifest = "out/spurious-fashion-mnist/manifest.csv";
  c.augmentation = data::Augmentation::FFR;
  c.method = TrainingMethod::GroupDRO;
  c.bias_ratio = 0.999;
  c.learning_rate = 1e-5;
  c.seed = 2;
  const std::string name = run_name(c);
  EXPECT_TRUE(std::regex_match(name, std::regex("spurious-fashion-mnist-ffr-groupdro-r0\\.999-lr1e-05-s2-[0-9a-f]{12}")))
      << name;
  EXPECT_EQ(run_name(c), name);

  ExperimentConfig elsewhere = c;  // where and how fast a run goes does not change its numbers
  elsewhere.device = "cuda";
  elsewhere.loader_workers = 7;
  EXPECT_EQ(run_name(elsewhere), name);
  elsewhere.precision = "bf16";  // goes with the device; recorded in each run's config.json
  EXPECT_EQ(run_name(elsewhere), name);

  std::set<std::string> names = {name};
  ExperimentConfig d = c;
  d.epochs = 3;
  names.insert(run_name(d));
  d = c;
  d.freeze_batch_norm = true;
  names.insert(run_name(d));
  d = c;
  d.model = "resnet50";
  names.insert(run_name(d));
  d = c;
  d.stages = StageOrder::Stage2Then1;
  names.insert(run_name(d));
  EXPECT_EQ(names.size(), 5u);
  EXPECT_NE(run_name(d).find("-stage2-then-1-"), std::string::npos);
}

TEST(FfrGrid, SettingsTuneBatchNormForFullFfrOnly) {
  GridOptions o = small_options({"table1"});
  o.freeze_batch_norm = {false, true};
  const Grid grid = make_grid(o);
  for (const GridCell& c : grid.cells) {
    const size_t expected = c.config.stages == StageOrder::Full ? 4 : 2;
    EXPECT_EQ(cell_settings(grid, c).size(), expected) << c.label;
  }
  // Stage 1 only trains stage 1: the grid's rate goes there.
  GridCell stage1 = grid.cells.front();
  ASSERT_EQ(stage1.config.stages, StageOrder::Stage1Only);
  EXPECT_EQ(run_config(stage1, {1e-6, false}, 3).stage1_learning_rate, 1e-6);
  EXPECT_EQ(run_config(stage1, {1e-6, false}, 3).seed, 3u);
}

TEST(FfrGrid, PlanSharesRunsBetweenExperimentsAndSeedsFollowSettings) {
  const Grid grid = make_grid(small_options({"figure3", "table3"}));
  const std::vector<GridRun> runs = plan_runs(grid);
  // table3's USB/ASB/FFR cells equal figure3's: only figure3's 4 modes x 2 ratios x 2 lrs x 2 seeds.
  EXPECT_EQ(runs.size(), 32u);
  std::set<std::string> names;
  for (const GridRun& r : runs) names.insert(r.name);
  EXPECT_EQ(names.size(), runs.size());
  EXPECT_EQ(runs[0].config.learning_rate, 1e-4);
  EXPECT_EQ(runs[0].seed, 0u);
  EXPECT_EQ(runs[1].seed, 1u);
  EXPECT_EQ(runs[2].config.learning_rate, 1e-5);
}

TEST(FfrGrid, ShardsPartitionTheRunListExactly) {
  const std::vector<GridRun> runs = plan_runs(make_grid(small_options({"figure3"})));
  for (int count = 1; count <= 7; ++count) {
    std::multiset<std::string> seen;
    size_t smallest = runs.size(), largest = 0;
    for (int index = 0; index < count; ++index) {
      const std::vector<GridRun> mine = shard_runs(runs, parse_shard(std::to_string(index) + "/" + std::to_string(count)));
      for (const GridRun& r : mine) seen.insert(r.name);
      smallest = std::min(smallest, mine.size());
      largest = std::max(largest, mine.size());
      EXPECT_EQ(mine.size(), shard_runs(runs, {index, count}).size());  // deterministic
    }
    std::multiset<std::string> all;
    for (const GridRun& r : runs) all.insert(r.name);
    EXPECT_EQ(seen, all) << count << " shards: union must be every run, each once";
    EXPECT_LE(largest - smallest, 1u);
  }
  for (const char* bad : {"4/4", "-1/2", "1", "a/b", "1/0", "1/2x", ""}) {
    expect_input_error([&] { parse_shard(bad); }, {"shard", "i/N"});
  }
}

TEST(FfrGrid, SecondInvocationRunsNothingNew) {
  TempDir dir;
  const Grid grid = make_grid(small_options({"figure3"}));
  FakeRunner fake;
  std::vector<GridProgress::Event> events;
  const GridRunSummary first = run_grid(grid, {dir.path().string(), {}}, fake.function(),
                                        [&](const GridProgress& p) {
                                          events.push_back(p.event);
                                          EXPECT_EQ(p.total, 32);
                                          EXPECT_NE(p.run, nullptr);
                                        });
  EXPECT_EQ(first.runs, 32);
  EXPECT_EQ(first.ran, 32);
  EXPECT_EQ(fake.ran.size(), 32u);
  EXPECT_EQ(std::count(events.begin(), events.end(), GridProgress::Event::Starting), 32);
  EXPECT_EQ(std::count(events.begin(), events.end(), GridProgress::Event::Running), 32);
  EXPECT_EQ(std::count(events.begin(), events.end(), GridProgress::Event::Finished), 32);
  EXPECT_TRUE(fs::is_regular_file(dir / "grid.json"));

  const GridRunSummary second = run_grid(grid, {dir.path().string(), {}}, fake.function());
  EXPECT_EQ(second.ran, 0);
  EXPECT_EQ(second.resumed, 32);
  EXPECT_EQ(fake.ran.size(), 32u);
}

TEST(FfrGrid, IncompleteFolderIsRedone) {
  TempDir dir;
  const Grid grid = make_grid(small_options({"figure3"}));
  FakeRunner fake;
  run_grid(grid, {dir.path().string(), {}}, fake.function());
  // A killed run: its folder has files but no result.json.
  const GridRun victim = plan_runs(grid)[5];
  const std::string victim_dir = run_dir(dir.path().string(), victim);
  fs::remove(fs::path(victim_dir) / kResultFile);
  data::testing::write_file(fs::path(victim_dir) / kMetricsFile, "{\"epoch\": 1}\n");
  // And a run never started.
  fs::remove_all(run_dir(dir.path().string(), plan_runs(grid)[9]));

  fake.ran.clear();
  const GridRunSummary again = run_grid(grid, {dir.path().string(), {}}, fake.function());
  EXPECT_EQ(again.ran, 2);
  EXPECT_EQ(again.resumed, 30);
  ASSERT_EQ(fake.ran.size(), 2u);
  EXPECT_EQ(fake.ran[0], victim_dir);
  EXPECT_TRUE(has_result(victim_dir));
}

TEST(FfrGrid, AFolderHoldingAnotherConfigurationIsRefused) {
  TempDir dir;
  const Grid grid = make_grid(small_options({"figure3"}));
  FakeRunner fake;
  run_grid(grid, {dir.path().string(), {}}, fake.function());
  const GridRun run = plan_runs(grid)[7];
  const std::string folder = run_dir(dir.path().string(), run);
  ExperimentResult edited = read_result(folder);
  edited.config.epochs += 1;
  write_text_atomically((fs::path(folder) / kResultFile).string(), result_to_json(edited));
  expect_input_error([&] { run_grid(grid, {dir.path().string(), {}}, fake.function()); }, {folder, "another configuration"});
  expect_input_error([&] { collect_results(grid, {dir.path().string()}); }, {folder, "another configuration"});
  // Where a run went (device, loader threads) does not matter.
  edited.config = run.config;
  edited.config.device = "cuda";
  edited.config.loader_workers = 9;
  write_text_atomically((fs::path(folder) / kResultFile).string(), result_to_json(edited));
  EXPECT_EQ(run_grid(grid, {dir.path().string(), {}}, fake.function()).ran, 0);
}

TEST(FfrGrid, AFailingRunStopsTheGridNamingItsFolder) {
  TempDir dir;
  const Grid grid = make_grid(small_options({"figure3"}));
  const std::vector<GridRun> runs = plan_runs(grid);
  FakeRunner fake;
  RunFunction good = fake.function();
  int calls = 0;
  RunFunction flaky = [&](const ExperimentConfig& c, const std::string& d, const ProgressCallback& p) {
    if (++calls == 4) throw InputError("manifest broken");
    return good(c, d, p);
  };
  try {
    run_grid(grid, {dir.path().string(), {}}, flaky);
    ADD_FAILURE() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(runs[3].name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("manifest broken"), std::string::npos);
  }
  EXPECT_TRUE(has_result(run_dir(dir.path().string(), runs[2])));
  EXPECT_FALSE(has_result(run_dir(dir.path().string(), runs[3])));
}

TEST(FfrGrid, GridFilesAndGridJsonRoundTrip) {
  TempDir dir;
  const fs::path file = dir / "grid.config.json";
  data::testing::write_file(file, R"({
    "presets": ["figure3"],
    "manifests": ["a/manifest.csv", "b.csv"],
    "bias_ratios": [0.95],
    "seeds": [4, 5],
    "learning_rates": [1e-3],
    "freeze_batch_norm": [false, true],
    "base": {"epochs": 3, "model": "resnet50", "batch_size": 64},
    "cells": [{"experiment": "eta", "label": "FFR + GroupDRO, eta 0.1", "augmentation": "ffr",
               "method": "groupdro", "groupdro_step_size": 0.1}]
  })");
  const GridOptions o = read_grid_options(file.string());
  EXPECT_EQ(o.manifests.size(), 2u);
  EXPECT_EQ(o.base.epochs, 3);
  EXPECT_EQ(o.base.model, "resnet50");
  const Grid grid = make_grid(o);
  EXPECT_EQ(grid.cells.size(), 4u * 2u + 2u);  // figure3 on 2 data sets, and the custom cell on each
  const GridCell& custom = grid.cells.back();
  EXPECT_EQ(custom.experiment, "eta");
  EXPECT_EQ(custom.dataset, "b");
  EXPECT_EQ(custom.config.method, TrainingMethod::GroupDRO);
  EXPECT_EQ(custom.config.groupdro_step_size, 0.1);
  EXPECT_EQ(custom.config.epochs, 3);
  EXPECT_EQ(grid.cells.front().dataset, "a");

  const std::string text = grid_to_json(grid);
  EXPECT_EQ(grid_to_json(grid_from_json(text, "grid.json")), text);
  EXPECT_EQ(text.find("\"device\""), std::string::npos);  // shards on other machines write the same file
  EXPECT_EQ(plan_runs(grid_from_json(text, "grid.json")).size(), plan_runs(grid).size());

  data::testing::write_file(file, R"({"presets": ["figure3"], "learning_rate": [1e-4]})");
  expect_input_error([&] { read_grid_options(file.string()); }, {file.string(), "learning_rate", "unknown key"});
  data::testing::write_file(file, R"({"base": {"epoch": 3}})");
  expect_input_error([&] { read_grid_options(file.string()); }, {file.string(), "epoch", "unknown config key"});
  data::testing::write_file(file, R"({"cells": [{"method": "sgd"}]})");
  expect_input_error([&] { read_grid_options(file.string()); }, {file.string(), "sgd"});
  data::testing::write_file(file, R"({"seeds": [-1]})");
  expect_input_error([&] { read_grid_options(file.string()); }, {file.string(), "seeds"});
}

// Issue 19, point 1: FFR's stage-1 rate is searched in every full-FFR cell (the authors choose it
// by stage 1's mean val WA before stage 2); the plan lists the search runs, and stage 2 runs from
// the chosen rate once the search is complete.
TEST(FfrGrid, Stage1LearningRateIsSearchedInEveryFullFfrCell) {
  GridOptions o = small_options({"figure3", "table1"});
  o.bias_ratios = {0.9};
  o.learning_rates = {1e-3, 1e-4};
  o.stage1_learning_rates = {};  // the default: the --lr list, searched
  const Grid grid = make_grid(o);
  ASSERT_EQ(grid.stage1_learning_rates, (std::vector<double>{1e-3, 1e-4}));
  const std::vector<GridRun> before = plan_runs(grid);
  size_t searches = 0, pending = 0;
  for (const GridRun& r : before) {
    if (r.stage1_search) {
      ++searches;
      EXPECT_EQ(r.config.stages, StageOrder::Stage1Only);
      EXPECT_EQ(r.config.method, TrainingMethod::ERM);
      EXPECT_EQ(r.config.stage1_learning_rate, r.hyper_parameters.learning_rate);
    }
    pending += r.pending;
    if (r.pending) EXPECT_EQ(r.config.stages, StageOrder::Full);
  }
  // 2 rates x 2 seeds, shared by figure3's FFR and table1's "stage 1 then 2" cells and equal to
  // table1's "stage 1 only" runs (planned once).
  EXPECT_EQ(searches, 4u);
  EXPECT_EQ(pending, 2u * 2u);  // FFR stage 2: 2 rates x 2 seeds, waiting for the choice
  // table1's "stage 1 only" cell plans no runs of its own: they are the search's.
  for (const GridRun& r : before) {
    if (r.config.stages == StageOrder::Stage1Only) EXPECT_TRUE(r.stage1_search) << r.name;
  }

  TempDir dir;
  FakeRunner fake;
  const GridRunSummary ran = run_grid(grid, {dir.path().string(), {}}, fake.function());
  EXPECT_EQ(ran.pending, 0);
  EXPECT_EQ(size_t(ran.ran), before.size());
  EXPECT_EQ(fake.ran.size(), before.size());
  // The fake's val WA grows as the rate falls: 1e-4 wins stage 1.
  const std::vector<GridRun> after = plan_runs(grid, completed_runs({dir.path().string()}));
  ASSERT_EQ(after.size(), before.size()) << "the plan keeps its length as searches complete";
  size_t full_ffr = 0;
  for (const GridRun& r : after) {
    EXPECT_FALSE(r.pending) << r.name;
    if (r.config.augmentation == data::Augmentation::FFR && r.config.stages == StageOrder::Full) {
      ++full_ffr;
      EXPECT_EQ(r.config.stage1_learning_rate, 1e-4) << r.name;
      EXPECT_TRUE(has_result((dir / "runs" / r.name).string())) << r.name;
    }
  }
  EXPECT_EQ(full_ffr, 4u);
  // One stage-1 rate: no search, as --stage1-lr with one value.
  o.stage1_learning_rates = {1e-3};
  for (const GridRun& r : plan_runs(make_grid(o))) {
    EXPECT_FALSE(r.stage1_search || r.pending) << r.name;
    if (r.config.augmentation == data::Augmentation::FFR && r.config.stages == StageOrder::Full) {
      EXPECT_EQ(r.config.stage1_learning_rate, 1e-3);
    }
  }
}

// Issue 19, point 5: SpuCo Animals has no 0.9 (its natural bias is ~0.95); a data set's own list
// replaces the general one; Table 6's rates reach FFR's stage 2 only.
TEST(FfrGrid, RatiosPerDataSetAndTheTable6LearningRates) {
  GridOptions o = small_options({"figure3"});
  o.manifests = {"data/celeba-hq/manifest.csv", "data/spuco-animals/manifest.csv", "data/utk/manifest.csv"};
  o.bias_ratios = {0.9, 0.95, 0.99};
  o.bias_ratios_by_dataset["utk"] = {0.97};
  std::map<std::string, std::set<double>> ratios;
  for (const GridCell& c : make_grid(o).cells) ratios[c.dataset].insert(c.config.bias_ratio);
  EXPECT_EQ(ratios["celeba-hq"], (std::set<double>{0.9, 0.95, 0.99}));
  EXPECT_EQ(ratios["spuco-animals"], (std::set<double>{0.95, 0.99}));
  EXPECT_EQ(ratios["utk"], (std::set<double>{0.97}));
  o.bias_ratios = {0.9};
  o.bias_ratios_by_dataset.clear();
  expect_input_error([&] { make_grid(o); }, {"spuco-animals", "0.95", "bias_ratios_by_dataset"});

  o = small_options({"table4x4"});
  o.ffr_learning_rates = table6_ffr_learning_rates();
  const Grid grid = make_grid(o);
  for (const GridCell& c : grid.cells) {
    std::set<double> rates;
    for (const HyperParameters& h : cell_settings(grid, c)) rates.insert(h.learning_rate);
    const bool ffr = c.config.augmentation == data::Augmentation::FFR;
    EXPECT_EQ(rates.size(), ffr ? 6u : 2u) << c.label;
    if (ffr) EXPECT_EQ(*rates.begin(), 1e-9) << c.label;
  }
  const std::string text = grid_to_json(grid);
  EXPECT_EQ(grid_to_json(grid_from_json(text, "grid.json")), text);
}

TEST(FfrGrid, ShardFoldersOfDifferentGridsAreRefused) {
  TempDir dir;
  FakeRunner fake;
  GridOptions o = small_options({"figure3"});
  run_grid(make_grid(o), {(dir / "a").string(), {0, 2}}, fake.function());
  o.seeds = {0, 1, 2};
  run_grid(make_grid(o), {(dir / "b").string(), {1, 2}}, fake.function());
  expect_input_error([&] { read_grid({(dir / "a").string(), (dir / "b").string()}); }, {"different grid"});
  expect_input_error([&] { read_grid({dir.path().string()}); }, {"no grid.json"});
}

TEST(FfrGrid, DatasetNamesComeFromTheManifestPath) {
  EXPECT_EQ(dataset_name("out/spurious-fashion-mnist/manifest.csv"), "spurious-fashion-mnist");
  EXPECT_EQ(dataset_name("/data/celeba-hq.csv"), "celeba-hq");
  EXPECT_EQ(dataset_name("manifest.csv"), "manifest");
}

}  // namespace
}  // namespace ffr
