// --init: a run starts from a weights file (the paper's ImageNet-pretrained backbones). The file
// here is made by the engine itself: train, save, then fine-tune from it with a fresh head.
#include "ffr/init_weights.h"

#include "data/manifest.h"
#include "engine/error.h"
#include "engine/fault_injection.h"
#include "engine/safetensors.h"
#include "engine/sha256.h"
#include "ffr/experiment.h"
#include "ffr/experiment_json.h"
#include "ffr/grid.h"
#include "ffr/run_folder.h"
#include "ffr_test_support.h"
#include "layers/model_zoo.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>

namespace ffr {
namespace {

using data::Augmentation;
using data::testing::expect_input_error;
using data::testing::read_file;
using data::testing::TempDir;
using testing::tiny_config;
namespace fs = std::filesystem;

std::map<std::string, Tensor> by_name(const NamedTensors& tensors) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) out[name] = t.cpu();
  return out;
}

bool same_values(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor x = a.cpu(), y = b.cpu();  // tensors are always contiguous
  return std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) == 0;
}

bool is_head(const std::string& name) { return name.rfind("fc.", 0) == 0; }

class FfrInitWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    FFR_REQUIRE_FASHION_MNIST();
    // Train and save: the run's best.safetensors is the init file (the engine's own names).
    ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::ERM);
    run_experiment(c, (tmp_ / "pretrain").string());
    weights_ = (tmp_ / "pretrain" / kCheckpointFile).string();
    classes_ = data::read_manifest(c.manifest).info.num_classes();
  }
  TempDir tmp_;
  std::string weights_;
  int64_t classes_ = 4;
};

TEST_F(FfrInitWeights, LoadsEveryBodyTensorAndReinitialisesTheHead) {
  const auto file = by_name(load_safetensors(weights_).tensors);
  // A data set with another class count: the body comes from the file, the head is this model's own.
  Rng rng(7);
  auto model = make_model("resnet_tiny", 3, rng);
  const auto fresh = by_name(model->state_dict());
  const InitWeightsReport report = load_init_weights(*model, weights_, /*keep_head=*/false);
  EXPECT_EQ(report.head_prefix, "fc.");
  EXPECT_FALSE(report.head_from_file);
  int64_t body = 0;
  for (const auto& [name, t] : model->state_dict()) {
    if (is_head(name)) {
      EXPECT_TRUE(same_values(t, fresh.at(name))) << name << " is not the fresh head";
      EXPECT_EQ(t.shape()[0], 3) << name;
    } else {
      ++body;
      EXPECT_TRUE(same_values(t, file.at(name))) << name << " differs from the file's";
    }
  }
  EXPECT_EQ(report.loaded, body);
  // A fresh head really is different from the file's (same class count, other seed).
  Rng other(7);
  auto same_classes = make_model("resnet_tiny", classes_, other);
  load_init_weights(*same_classes, weights_, false);
  EXPECT_FALSE(same_values(by_name(same_classes->state_dict()).at("fc.weight"), file.at("fc.weight")));

  // --keep-head: the file's head, when the class count fits; refused, saying why, when not.
  load_init_weights(*same_classes, weights_, /*keep_head=*/true);
  EXPECT_TRUE(same_values(by_name(same_classes->state_dict()).at("fc.weight"), file.at("fc.weight")));
  expect_input_error([&] { load_init_weights(*model, weights_, true); },
                     {weights_, "shape: fc.weight", "another class count", "--keep-head"});
}

TEST_F(FfrInitWeights, WrongModelShapeOrDtypeIsOneClearError) {
  Rng rng(1);
  auto resnet = make_model("resnet_tiny", 4, rng);
  // Another model: the first names that differ, with the count.
  auto vit = make_model("vit_tiny", 4, rng);
  const std::string vit_file = (tmp_ / "vit.safetensors").string();
  save_safetensors(vit_file, vit->state_dict());
  expect_input_error(
      [&] { load_init_weights(*resnet, vit_file, false); },
      {vit_file, "do not match model resnet_tiny", "missing from the file, the first:", "missing: conv1.weight",
       "unexpected in the file, the first:", "unexpected: blocks.0.attn.proj.bias", "tools/convert_weights.py"});
  // One tensor of the wrong shape, one of the wrong dtype, one extra, one missing.
  NamedTensors state = resnet->state_dict();
  NamedTensors edited;
  for (auto& [name, t] : state) {
    if (name == "conv1.weight")
      edited.emplace_back(name, Tensor::zeros({2, 3, 3, 3}));
    else if (name == "bn1.weight")
      edited.emplace_back(name, t.cpu().to(DType::Float64));
    else if (name != "layer1.0.conv2.weight")
      edited.emplace_back(name, t);
  }
  edited.emplace_back("extra.weight", Tensor::zeros({5}));
  const std::string bad = (tmp_ / "bad.safetensors").string();
  save_safetensors(bad, edited);
  expect_input_error([&] { load_init_weights(*resnet, bad, false); },
                     {"(4 differences)", "shape: conv1.weight is [2,3,3,3]", "dtype: bn1.weight is F64",
                      "missing: layer1.0.conv2.weight", "unexpected: extra.weight"});
  // Through a run: refused before the run folder is made.
  ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::ERM);
  c.init_weights = vit_file;
  expect_input_error([&] { run_experiment(c, (tmp_ / "refused").string()); }, {"missing: conv1.weight"});
  EXPECT_FALSE(fs::exists(tmp_ / "refused" / kConfigFile));
  c.init_weights.clear();
  c.keep_head = true;
  expect_input_error([&] { run_experiment(c, (tmp_ / "refused").string()); }, {"keep_head needs init_weights"});
}

TEST_F(FfrInitWeights, FfrStageOneStartsFromTheFileAndStageTwoFromStageOne) {
  // Learning rates so small that Adam's steps vanish below float32's resolution: the trained
  // weights stay the loaded ones, so the selected checkpoint shows where each stage started.
  ExperimentConfig c = tiny_config(Augmentation::FFR, TrainingMethod::ERM);
  c.init_weights = weights_;
  c.learning_rate = 1e-30;
  c.stage1_learning_rate = 1e-30;
  c.weight_decay = 0.0;
  const fs::path dir = tmp_ / "finetune";
  const ExperimentResult r = run_experiment(c, dir.string());
  EXPECT_EQ(r.config.init_sha256, sha256_file_hex(weights_));
  const auto file = by_name(load_safetensors(weights_).tensors);
  const auto best = by_name(load_safetensors((dir / kCheckpointFile).string()).tensors);
  for (const auto& [name, t] : best) {
    if (name.find("running_") != std::string::npos || name.find("num_batches") != std::string::npos) continue;
    if (is_head(name)) {
      EXPECT_FALSE(same_values(t, file.at(name))) << name << ": the head should be fresh";
    } else {
      EXPECT_TRUE(same_values(t, file.at(name))) << name << " did not start from the init file";
    }
  }
  // config.json records the file and its digest.
  const nlohmann::json config = nlohmann::json::parse(read_file(dir / kConfigFile));
  EXPECT_EQ(config.at("init_weights"), weights_);
  EXPECT_EQ(config.at("init_sha256"), sha256_file_hex(weights_));
  EXPECT_EQ(config.at("keep_head"), false);
}

TEST_F(FfrInitWeights, ARunRefusesAnInitFileThatChanged) {
  ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::ERM);
  c.epochs = 2;
  c.batch_size = 32;
  const std::string init = (tmp_ / "init.safetensors").string();
  fs::copy_file(weights_, init);
  c.init_weights = init;
  // The steps of one epoch, to stop the run in its second one.
  int64_t steps_per_epoch = 0;
  {
    ExperimentConfig one = c;
    one.epochs = 1;
    run_experiment(one, (tmp_ / "count").string(), [&](const Progress& p) { steps_per_epoch = p.steps; });
  }
  ASSERT_GT(steps_per_epoch, 0);
  const fs::path dir = tmp_ / "run";
  fault::set_plan(fault::parse_plan(detail::concat("oom-at-step=", steps_per_epoch + 1)));
  EXPECT_THROW(run_experiment(c, dir.string()), OutOfMemoryError);
  fault::set_plan({});
  ASSERT_TRUE(fs::exists(dir / kResumeFile));

  // Another file under the same name: the resume is refused, naming both digests.
  const std::string before = sha256_file_hex(init);
  Rng rng(99);
  save_safetensors(init, make_model("resnet_tiny", 4, rng)->state_dict());
  expect_input_error([&] { run_experiment(c, dir.string()); }, {kResumeFile, init, before, "restore the file"});
  // With the original back, the run resumes and completes; then a changed file is refused again.
  fs::copy_file(weights_, init, fs::copy_options::overwrite_existing);
  EXPECT_NO_THROW(run_experiment(c, dir.string()));
  ASSERT_TRUE(has_result(dir.string()));
  save_safetensors(init, make_model("resnet_tiny", 4, rng)->state_dict());
  expect_input_error([&] { run_experiment(c, dir.string()); }, {kResultFile, "SHA-256", before});
  // A grid plans with the digest it read: a file replaced since then is refused.
  ExperimentConfig planned = c;
  planned.init_sha256 = before;
  expect_input_error([&] { run_experiment(planned, (tmp_ / "planned").string()); }, {init, "the file changed"});
}

TEST(FfrInitWeightsGrid, EveryRunOfAGridStartsFromTheFileAndItsDigestNamesTheRuns) {
  GridOptions o;
  o.presets = {"table1"};
  o.manifests = {"data/toy/manifest.csv"};
  o.bias_ratios = {0.9};
  o.seeds = {0, 1};
  o.learning_rates = {1e-4};
  const std::vector<GridRun> plain = plan_runs(make_grid(o));
  o.base.init_weights = "weights/resnet50.safetensors";
  o.base.init_sha256 = std::string(64, 'a');
  const std::vector<GridRun> from_file = plan_runs(make_grid(o));
  o.base.init_sha256 = std::string(64, 'b');  // the same name, other content
  const std::vector<GridRun> other_content = plan_runs(make_grid(o));
  ASSERT_EQ(from_file.size(), plain.size());
  ASSERT_FALSE(from_file.empty());
  for (size_t i = 0; i < from_file.size(); ++i) {
    EXPECT_EQ(from_file[i].config.init_weights, "weights/resnet50.safetensors") << from_file[i].name;
    EXPECT_EQ(from_file[i].config.init_sha256, std::string(64, 'a')) << from_file[i].name;
    EXPECT_NE(from_file[i].name, plain[i].name);
    EXPECT_NE(from_file[i].name, other_content[i].name);
  }
  // The keys round-trip through config.json (and so through grid files and result.json).
  const ExperimentConfig back = config_from_json(config_to_json(from_file[0].config), "test");
  EXPECT_EQ(back.init_weights, from_file[0].config.init_weights);
  EXPECT_EQ(back.init_sha256, from_file[0].config.init_sha256);
  EXPECT_TRUE(same_experiment(back, from_file[0].config));
}

}  // namespace
}  // namespace ffr
