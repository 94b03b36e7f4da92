// The trainer's parts on their own: GroupDRO's weights over steps, the method's groups, the
// training-set cap, freezing BN in a stage, epoch selection, and the run folder's JSON.
#include "data/manifest.h"
#include "engine/error.h"
#include "ffr/experiment_json.h"
#include "ffr/stages.h"
#include "ffr/trainer.h"
#include "ffr/training_method.h"
#include "ffr_test_support.h"
#include "layers/conv_bn.h"
#include "layers/model_zoo.h"

#include <cmath>
#include <limits>
#include <set>

namespace ffr {
namespace {

using data::Augmentation;
using testing::tiny_config;
using testing::TinyDataSet;

// A 3-group batch where group 2's samples are confidently wrong and the others confidently right.
struct HardGroupBatch {
  Tensor logits, labels, groups;
  HardGroupBatch() {
    std::vector<float> x;
    std::vector<int64_t> y, g;
    for (int i = 0; i < 12; ++i) {
      const int group = i % 3;
      const int label = i % 2;
      const bool wrong = group == 2;
      x.push_back((label == 0) != wrong ? 3.0f : -3.0f);
      x.push_back((label == 1) != wrong ? 3.0f : -3.0f);
      y.push_back(label);
      g.push_back(group);
    }
    logits = Tensor::from_vector(x, {12, 2});
    labels = Tensor::from_vector(y, {12});
    groups = Tensor::from_vector(g, {12});
  }
};

TrainingGroups three_groups(std::vector<int64_t> sizes) {
  TrainingGroups t;
  t.num_groups = int64_t(sizes.size());
  t.sizes = std::move(sizes);
  return t;
}

TEST(FfrGroupDro, WeightsMoveTowardTheWorstGroupOverSteps) {
  TrainingLoss loss(TrainingMethod::GroupDRO, three_groups({4, 4, 4}), Device::cpu(), {0.1, 0.0});
  EXPECT_EQ(loss.group_weights().to_vector<float>(), (std::vector<float>{1 / 3.f, 1 / 3.f, 1 / 3.f}));
  const HardGroupBatch batch;
  std::vector<float> previous = loss.group_weights().to_vector<float>();
  double previous_loss = 0.0;
  for (int step = 0; step < 20; ++step) {
    const double value = loss(batch.logits, batch.labels, batch.groups).item();
    const std::vector<float> q = loss.group_weights().to_vector<float>();
    EXPECT_GT(q[2], previous[2]) << "step " << step;
    EXPECT_LT(q[0], previous[0]) << "step " << step;
    EXPECT_NEAR(q[0] + q[1] + q[2], 1.0, 1e-6);
    EXPECT_GT(value, previous_loss) << "the weighted loss follows the hard group";
    previous = q;
    previous_loss = value;
  }
  EXPECT_GT(previous[2], 0.9f);
  // q_k <- q_k exp(eta L_k), renormalised: after n equal steps, q_2 / q_0 = exp(n eta (L_2 - L_0)).
  const double l_wrong = std::log1p(std::exp(6.0)), l_right = std::log1p(std::exp(-6.0));
  EXPECT_NEAR(std::log(previous[2] / previous[0]), 20 * 0.1 * (l_wrong - l_right), 1e-3);
}

TEST(FfrGroupDro, GroupsWithoutTrainingSamplesGetNoWeight) {
  TrainingLoss loss(TrainingMethod::GroupDRO, three_groups({5, 0, 15}), Device::cpu(), {0.01, 1.0});
  EXPECT_EQ(loss.group_weights().to_vector<float>(), (std::vector<float>{0.5f, 0.0f, 0.5f}));
  const HardGroupBatch batch;
  loss(batch.logits, batch.labels, batch.groups);
  const std::vector<float> q = loss.group_weights().to_vector<float>();
  EXPECT_EQ(q[1], 0.0f);
  EXPECT_TRUE(std::isfinite(q[0]) && std::isfinite(q[2]));
}

TEST(FfrGroupDro, ErmAndResamplingUseThePlainMean) {
  const HardGroupBatch batch;
  for (TrainingMethod m : {TrainingMethod::ERM, TrainingMethod::Resampling}) {
    TrainingLoss loss(m, three_groups({4, 4, 4}), Device::cpu());
    EXPECT_FALSE(loss.group_weights().defined());
    const double l_wrong = std::log1p(std::exp(6.0)), l_right = std::log1p(std::exp(-6.0));
    EXPECT_NEAR(loss(batch.logits, batch.labels, batch.groups).item(), (l_wrong + 2 * l_right) / 3, 1e-5);
  }
}

class FfrTraining : public ::testing::Test {
 protected:
  void SetUp() override { FFR_REQUIRE_FASHION_MNIST(); }
};

TEST_F(FfrTraining, GroupAwareMethodsUnderUsbSplitRealAndSynthetic) {
  const ExperimentConfig base = tiny_config(Augmentation::USB, TrainingMethod::GroupDRO);
  const data::Manifest manifest = data::read_manifest(base.manifest);
  const data::ExperimentSplits splits = data::make_experiment_splits(manifest, {0.9, Augmentation::USB});
  for (TrainingMethod m :
       {TrainingMethod::ERM, TrainingMethod::Resampling, TrainingMethod::GroupDRO, TrainingMethod::DFR}) {
    ExperimentConfig c = base;
    c.method = m;
    const std::vector<StagePlan> plan = plan_stages(c, manifest, splits);
    ASSERT_EQ(plan.size(), 1u);
    const bool group_aware = m == TrainingMethod::Resampling || m == TrainingMethod::GroupDRO;
    EXPECT_EQ(plan[0].source_groups, group_aware) << method_name(m);
    EXPECT_EQ(plan[0].method, m == TrainingMethod::DFR ? TrainingMethod::ERM : m) << "DFR trains with ERM";
  }
  // FFR's stages never mix sources, so its groups stay (y, b).
  ExperimentConfig f = tiny_config(Augmentation::FFR, TrainingMethod::GroupDRO);
  const data::ExperimentSplits ffr_splits = data::make_experiment_splits(manifest, {0.9, Augmentation::FFR});
  for (const StagePlan& s : plan_stages(f, manifest, ffr_splits)) EXPECT_FALSE(s.source_groups) << s.name;

  const data::GroupIndex groups(manifest.info);
  const TrainingGroups with_source = training_groups(manifest, splits.train, groups, true);
  EXPECT_EQ(with_source.num_groups, 32);
  int64_t real = 0, synthetic = 0;
  for (int64_t k = 0; k < 32; ++k) (k % 2 ? synthetic : real) += with_source.sizes[size_t(k)];
  EXPECT_GT(real, 0);
  EXPECT_GT(synthetic, 0);
  EXPECT_EQ(real + synthetic, int64_t(splits.train.size()));
}

TEST_F(FfrTraining, CapKeepsGroupProportionsAndEveryGroup) {
  const data::Manifest manifest = data::read_manifest(TinyDataSet::manifest());
  const data::GroupIndex groups(manifest.info);
  const data::IndexList train = data::make_experiment_splits(manifest, {0.9, Augmentation::USB}).train;
  const data::IndexList capped = cap_samples(manifest, train, groups, 200, 3);
  EXPECT_LE(capped.size(), 200u + 32u);
  EXPECT_GE(capped.size(), 200u);
  EXPECT_TRUE(std::is_sorted(capped.begin(), capped.end()));
  const TrainingGroups before = training_groups(manifest, train, groups, true);
  const TrainingGroups after = training_groups(manifest, capped, groups, true);
  for (size_t k = 0; k < before.sizes.size(); ++k) {
    EXPECT_EQ(after.sizes[k] > 0, before.sizes[k] > 0) << "group " << k;
    EXPECT_NEAR(double(after.sizes[k]), double(before.sizes[k]) * 200.0 / double(train.size()), 1.5) << "group " << k;
  }
  EXPECT_EQ(cap_samples(manifest, train, groups, 200, 3), capped) << "seeded";
  EXPECT_NE(cap_samples(manifest, train, groups, 200, 4), capped);
  EXPECT_EQ(cap_samples(manifest, train, groups, 0, 3), train) << "0: no cap";
}

// Trains one epoch of stage 2 with BN frozen; returns, per kind of tensor, how many changed.
struct FrozenBatchNormChanges {
  size_t statistics = 0, statistics_changed = 0;  // running mean/var
  size_t affine = 0, affine_changed = 0;          // BN weight/bias
  size_t other = 0, other_changed = 0;            // convolutions, head
};

FrozenBatchNormChanges train_with_frozen_batch_norm(const ExperimentConfig& c, bool freeze_affine) {
  const data::Manifest manifest = data::read_manifest(c.manifest);
  const data::GroupIndex groups(manifest.info);
  const data::ExperimentSplits splits = data::make_experiment_splits(manifest, {0.9, Augmentation::None});
  Rng rng(0);
  std::unique_ptr<Classifier> model = make_model("resnet_tiny", 4, rng, 16);
  TrainingContext context;
  context.manifest = &manifest;
  context.groups = &groups;
  context.val = splits.val;
  context.loader.image_size = 16;
  context.loader.workers = 1;
  context.batch_size = 64;
  StagePlan plan;
  plan.name = "stage 2";
  plan.samples = splits.train;
  plan.learning_rate = 1e-2;
  plan.freeze_batch_norm = true;
  plan.freeze_batch_norm_affine = freeze_affine;
  // Batch-norm tensors are told apart by identity (torchvision names some "downsample.1").
  std::set<const TensorImpl*> statistics, affine;
  for (BatchNorm2d* layer : batch_norm_layers(*model)) {
    statistics.insert({layer->running_mean.impl(), layer->running_var.impl()});
    affine.insert({layer->weight.impl(), layer->bias.impl()});
  }
  std::vector<std::vector<float>> before;
  for (const auto& [name, t] : model->state_dict()) before.push_back(t.to(DType::Float32).to_vector<float>());
  const StageOutcome outcome = train_stage(*model, plan, context);
  EXPECT_EQ(outcome.best_epoch, 1);
  FrozenBatchNormChanges changes;
  size_t i = 0;
  for (const auto& [name, t] : model->state_dict()) {
    const bool changed = t.to(DType::Float32).to_vector<float>() != before[i++];
    if (statistics.count(t.impl())) {
      ++changes.statistics;
      changes.statistics_changed += changed;
    } else if (affine.count(t.impl())) {
      ++changes.affine;
      changes.affine_changed += changed;
    } else if (name.find("num_batches_tracked") == std::string::npos) {
      ++changes.other;
      changes.other_changed += changed;
    }
  }
  return changes;
}

// The authors' freeze: BN in eval mode (statistics kept), scale and shift still trained.
TEST_F(FfrTraining, FrozenBatchNormKeepsStatisticsAndTrainsAffineParameters) {
  const FrozenBatchNormChanges c = train_with_frozen_batch_norm(tiny_config(Augmentation::None, TrainingMethod::ERM),
                                                                /*freeze_affine=*/false);
  EXPECT_GT(c.statistics, 0u);
  EXPECT_EQ(c.statistics_changed, 0u) << "running statistics stay frozen";
  EXPECT_GT(c.affine, 0u);
  EXPECT_EQ(c.affine_changed, c.affine) << "every BN scale and shift still learns";
  EXPECT_EQ(c.other_changed, c.other) << "every convolution and the head still learn";
}

// The explicit option (what freeze meant before): scale and shift frozen too.
TEST_F(FfrTraining, FrozenBatchNormAffineKeepsStatisticsAndAffineParameters) {
  const FrozenBatchNormChanges c = train_with_frozen_batch_norm(tiny_config(Augmentation::None, TrainingMethod::ERM),
                                                                /*freeze_affine=*/true);
  EXPECT_EQ(c.statistics_changed, 0u);
  EXPECT_GT(c.affine, 0u);
  EXPECT_EQ(c.affine_changed, 0u);
  EXPECT_EQ(c.other_changed, c.other);
}

// A config written before the affine key meant "affine frozen too": it must not pass for a run
// of the new default, or a stale result would be reused.
TEST(FfrJson, FreezeBatchNormWithoutAffineKeyReadsAsTheOldMeaning) {
  ExperimentConfig c;
  c.augmentation = Augmentation::FFR;
  c.freeze_batch_norm = true;  // the default: statistics only
  std::string old_text = config_to_json(c);
  const std::string key = "\"freeze_batch_norm_affine\": false,";
  ASSERT_NE(old_text.find(key), std::string::npos) << old_text;
  old_text.erase(old_text.find(key), key.size());
  const ExperimentConfig old = config_from_json(old_text, "old config.json");
  EXPECT_TRUE(old.freeze_batch_norm_affine);
  EXPECT_FALSE(same_experiment(old, c));
  ExperimentConfig unfrozen;  // runs without a frozen BN keep their configs (and run names)
  EXPECT_EQ(config_to_json(unfrozen).find("freeze_batch_norm_affine"), std::string::npos);
}

// A bias-agnostic run made before Table 5 had its own pool (config without agnostic_pool_version)
// drew the bias-aware images with b ignored: it is not reused, and not run again.
TEST(FfrJson, BiasAgnosticConfigWithoutPoolVersionIsAnOlderExperiment) {
  ExperimentConfig c;
  c.manifest = "m.csv";
  c.augmentation = Augmentation::FFR;
  c.synthetic = data::SyntheticDistribution::BiasAgnostic;
  std::string text = config_to_json(c);
  const std::string key = "\"agnostic_pool_version\": 2,";
  ASSERT_NE(text.find(key), std::string::npos) << text;
  text.erase(text.find(key), key.size());
  const ExperimentConfig old = config_from_json(text, "old config.json");
  EXPECT_EQ(old.agnostic_pool_version, 1);
  EXPECT_FALSE(same_experiment(old, c));
  data::testing::expect_input_error([&] { validate_config(old); }, {"agnostic_pool_version", "class-only-prompt"});
  ExperimentConfig balanced;  // other synthetic sets do not carry it: their configs stay
  EXPECT_EQ(config_to_json(balanced).find("agnostic_pool_version"), std::string::npos);
}

TEST(FfrSelection, BetterEpochComparesWaThenBa) {
  auto metrics = [](double wa, double ba) {
    SplitMetrics m;
    m.worst_group_accuracy = wa;
    m.balanced_accuracy = ba;
    return m;
  };
  EXPECT_TRUE(better_epoch(metrics(0.5, 0.6), metrics(0.4, 0.9)));
  EXPECT_FALSE(better_epoch(metrics(0.4, 0.9), metrics(0.5, 0.6)));
  EXPECT_TRUE(better_epoch(metrics(0.5, 0.7), metrics(0.5, 0.6)));
  EXPECT_FALSE(better_epoch(metrics(0.5, 0.6), metrics(0.5, 0.6))) << "ties keep the earlier epoch";
  EXPECT_TRUE(better_epoch(metrics(0.0, 0.1), metrics(std::nan(""), std::nan(""))));
}

TEST(FfrJson, ConfigAndResultRoundTrip) {
  ExperimentConfig c;
  c.manifest = "data/x.csv";
  c.augmentation = Augmentation::FFR;
  c.synthetic = data::SyntheticDistribution::BiasAgnostic;
  c.stages = StageOrder::Stage2Then1;
  c.method = TrainingMethod::GroupDRO;
  c.learning_rate = 1e-9;
  c.seed = 18446744073709551615ull;
  c.freeze_batch_norm = true;
  c.max_train_samples = 77;
  const ExperimentConfig back = config_from_json(config_to_json(c), "test");
  EXPECT_EQ(config_to_json(back), config_to_json(c));
  EXPECT_TRUE(same_experiment(back, c));

  ExperimentResult r;
  r.config = c;
  r.test.worst_group_accuracy = 1.0 / 3.0;
  r.test.balanced_accuracy = 0.1 + 0.2;
  r.test.groups = {{0, 1, 3, 9}, {1, 0, 0, 0}};
  r.test_synthetic.worst_group_accuracy = std::nan("");  // written as null, read back as NaN
  r.best_epoch = 7;
  const ExperimentResult rb = result_from_json(result_to_json(r), "test");
  EXPECT_EQ(rb.test.worst_group_accuracy, r.test.worst_group_accuracy) << "round-trip precision";
  EXPECT_EQ(rb.test.balanced_accuracy, r.test.balanced_accuracy);
  ASSERT_EQ(rb.test.groups.size(), 2u);
  EXPECT_EQ(rb.test.groups[0].correct, 3);
  EXPECT_EQ(rb.test.groups[0].total, 9);
  EXPECT_TRUE(std::isnan(rb.test_synthetic.worst_group_accuracy));
  EXPECT_EQ(rb.best_epoch, 7);
  EXPECT_EQ(result_to_json(rb), result_to_json(r));

  data::testing::expect_input_error([] { config_from_json("{\"method\": \"sgd\"}", "cfg.json"); },
                                    {"cfg.json", "sgd"});
  data::testing::expect_input_error([] { config_from_json("{\"epochs\": \"ten\"}", "cfg.json"); },
                                    {"cfg.json", "epochs"});
  data::testing::expect_input_error([] { result_from_json("{", "result.json"); }, {"result.json"});
}

}  // namespace
}  // namespace ffr
