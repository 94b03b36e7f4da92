// Runs are keyed on their data's content, not its path (issue 17, item 2): after the data set is
// rebuilt at the same path, a completed run, an unfinished run's resume file and a grid's completed
// cell are refused, naming the file that changed and the way out, instead of showing old numbers.
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/fault_injection.h"
#include "engine/sha256.h"
#include "ffr/experiment.h"
#include "ffr/experiment_json.h"
#include "ffr/grid.h"
#include "ffr/run_folder.h"
#include "ffr_test_support.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace ffr {
namespace {

using data::Augmentation;
using data::testing::expect_input_error;
using data::testing::read_file;
using data::testing::TempDir;
using data::testing::write_file;
using testing::tiny_config;
using testing::TinyDataSet;
namespace fs = std::filesystem;

class FfrStaleRun : public ::testing::Test {
 protected:
  void SetUp() override {
    FFR_REQUIRE_FASHION_MNIST();
    // A copy of the tiny data set that the test may change.
    fs::copy(fs::path(TinyDataSet::manifest()).parent_path(), tmp_ / "data", fs::copy_options::recursive);
    config_ = tiny_config(Augmentation::None, TrainingMethod::ERM);
    config_.manifest = (tmp_ / "data" / "manifest.csv").string();
  }
  // Rewrites one real sample's orig_id: the same images, another manifest (as a rebuild with
  // another seed gives).
  void change_manifest() {
    std::string text = read_file(config_.manifest);
    const size_t at = text.find("fashion-mnist/");
    ASSERT_NE(at, std::string::npos);
    text.insert(at, "x");
    write_file(config_.manifest, text);
  }
  TempDir tmp_;
  ExperimentConfig config_;
};

TEST_F(FfrStaleRun, ConfigRecordsTheDataHashes) {
  const fs::path dir = tmp_ / "run";
  const ExperimentResult r = run_experiment(config_, dir.string());
  const nlohmann::json config = nlohmann::json::parse(read_file(dir / kConfigFile));
  EXPECT_EQ(config.at("manifest_sha256"), sha256_file_hex(config_.manifest));
  EXPECT_EQ(config.at("sidecar_sha256"), sha256_file_hex((tmp_ / "data" / "manifest.json").string()));
  EXPECT_EQ(r.config.manifest_sha256, sha256_file_hex(config_.manifest));
  EXPECT_EQ(read_result(dir.string()).config.sidecar_sha256, config.at("sidecar_sha256"));
  // The same data: the completed run is reused.
  EXPECT_EQ(run_experiment(config_, dir.string()).config.manifest_sha256, r.config.manifest_sha256);
}

TEST_F(FfrStaleRun, CompletedRunOnChangedDataIsRefusedNamingTheFile) {
  const fs::path dir = tmp_ / "run";
  run_experiment(config_, dir.string());
  change_manifest();
  expect_input_error([&] { run_experiment(config_, dir.string()); },
                     {dir.string(), "manifest.csv", "changed", "--restart", "--out"});
  EXPECT_TRUE(completed_on_other_data(dir.string(), config_));
  // What --restart does: start over, then the run is one of the current data.
  RunFolder(dir.string()).start_fresh();
  const ExperimentResult again = run_experiment(config_, dir.string());
  EXPECT_EQ(again.config.manifest_sha256, sha256_file_hex(config_.manifest));
  EXPECT_FALSE(completed_on_other_data(dir.string(), config_));

  // A changed sidecar is named too.
  const fs::path sidecar = tmp_ / "data" / "manifest.json";
  write_file(sidecar, read_file(sidecar) + "\n");
  expect_input_error([&] { run_experiment(config_, dir.string()); }, {"manifest.json", "changed"});
}

TEST_F(FfrStaleRun, UnfinishedRunOnChangedDataIsRefused) {
  config_.epochs = 2;
  const fs::path dir = tmp_ / "run";
  {
    // Fail in the second epoch (the tiny data set has 3 batches an epoch at batch 64).
    fault::set_plan(fault::parse_plan("oom-at-step=4"));
    EXPECT_THROW(run_experiment(config_, dir.string()), OutOfMemoryError);
    fault::set_plan({});
  }
  ASSERT_TRUE(fs::exists(dir / kResumeFile));
  change_manifest();
  expect_input_error([&] { run_experiment(config_, dir.string()); }, {kResumeFile, "manifest.csv", "--restart"});
}

// Grid: a completed cell is reused only when its data is the same.
TEST_F(FfrStaleRun, GridDoesNotReuseACellOfChangedData) {
  GridOptions o;
  o.presets = {"figure3"};
  o.manifests = {config_.manifest};
  o.bias_ratios = {0.9};
  o.seeds = {0};
  o.learning_rates = {1e-3};
  o.freeze_batch_norm = {false};
  o.base = tiny_config(Augmentation::None, TrainingMethod::ERM);
  const Grid grid = make_grid(o);
  int ran = 0;
  // Records the data hashes as run_experiment does, without training.
  RunFunction fake = [&](const ExperimentConfig& c, const std::string& dir, const ProgressCallback&) {
    ++ran;
    ExperimentResult r;
    r.config = c;
    r.config.manifest_sha256 = sha256_file_hex(c.manifest);
    r.config.sidecar_sha256 = sha256_file_hex((fs::path(c.manifest).parent_path() / "manifest.json").string());
    fs::create_directories(dir);
    write_text_atomically((fs::path(dir) / kResultFile).string(), result_to_json(r));
    return r;
  };
  const std::string out = (tmp_ / "grid").string();
  run_grid(grid, {out, {}}, fake);
  const int planned = ran;
  EXPECT_EQ(run_grid(grid, {out, {}}, fake).ran, 0);
  change_manifest();
  expect_input_error([&] { run_grid(grid, {out, {}}, fake); }, {"manifest.csv", "changed", "--out"});
  EXPECT_EQ(ran, planned);
}

}  // namespace
}  // namespace ffr
