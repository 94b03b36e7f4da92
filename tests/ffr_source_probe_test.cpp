// probe-source on the tiny built-in set: the synthetic images carry a fingerprint (palette shift,
// up-sampling pattern, soft edges) that even a tiny model learns from a few hundred images.
#include "ffr/source_probe.h"
#include "ffr_test_support.h"

namespace ffr {
namespace {

TEST(FfrSourceProbe, RealAndSyntheticAreDistinguishable) {
  FFR_REQUIRE_FASHION_MNIST();
  SourceProbeConfig c;
  c.manifest = testing::TinyDataSet::manifest();
  c.model = "resnet_tiny";
  c.epochs = 6;
  c.learning_rate = 3e-3;
  c.batch_size = 32;
  c.device = "cpu";
  c.loader_workers = 1;
  const SourceProbeResult r = probe_source(c);
  EXPECT_EQ(r.train_per_source, 160) << "all 160 real train images, as many synthetic";
  EXPECT_EQ(r.heldout_per_source, 32) << "test real cut to the 32 held-out synthetic test images";
  ASSERT_EQ(r.per_class.size(), 4u);
  int64_t total = 0;
  for (const SourceProbeClass& k : r.per_class) {
    EXPECT_EQ(k.real_total + k.synthetic_total, k.total);
    total += k.total;
  }
  EXPECT_EQ(total, 64);
  EXPECT_GT(r.accuracy, 0.75) << "real " << r.real_accuracy << ", synthetic " << r.synthetic_accuracy;
  EXPECT_LT(r.train_loss.back(), r.train_loss.front());
}

// A probe that did not learn (here: a learning rate too small to move it) gives no verdict on
// the data: "inconclusive", not "hard to tell apart" (issue 17, item 4).
TEST(FfrSourceProbe, AProbeThatDidNotLearnIsInconclusive) {
  FFR_REQUIRE_FASHION_MNIST();
  SourceProbeConfig c;
  c.manifest = testing::TinyDataSet::manifest();
  c.model = "resnet_tiny";
  c.epochs = 1;
  c.learning_rate = 1e-12;
  c.batch_size = 32;
  c.device = "cpu";
  c.loader_workers = 1;
  const SourceProbeResult r = probe_source(c);
  EXPECT_FALSE(r.learned) << "train accuracy " << r.train_accuracy;
  EXPECT_EQ(r.verdict, SourceProbeVerdict::Inconclusive);
  EXPECT_NE(std::string(source_probe_verdict_text(r)).find("inconclusive: the probe did not learn"), std::string::npos);
  EXPECT_EQ(r.epochs_run, 1);
}

// The verdict from the numbers: a probe that calls every image real is a constant on its own
// training data, whatever its held-out score.
TEST(FfrSourceProbe, VerdictNeedsAProbeBetterThanAConstant) {
  SourceProbeResult constant;
  constant.train_per_source = 500;
  constant.train_real_accuracy = 1.0;
  constant.train_synthetic_accuracy = 0.0;
  constant.train_accuracy = 0.5;
  constant.accuracy = 0.499;
  constant.real_accuracy = 0.998;
  EXPECT_EQ(source_probe_verdict(constant), SourceProbeVerdict::Inconclusive);
  // Nor is a random network that scores 60 % by chance and did not move from there.
  SourceProbeResult unmoved = constant;
  unmoved.train_accuracy = unmoved.untrained_train_accuracy = 0.606;
  EXPECT_EQ(source_probe_verdict(unmoved), SourceProbeVerdict::Inconclusive);
  SourceProbeResult learned = constant;
  learned.train_real_accuracy = learned.train_synthetic_accuracy = learned.train_accuracy = 0.99;
  learned.accuracy = 0.52;
  EXPECT_EQ(source_probe_verdict(learned), SourceProbeVerdict::HardToTellApart);
  learned.accuracy = 0.65;
  EXPECT_EQ(source_probe_verdict(learned), SourceProbeVerdict::Distinguishable);
  learned.accuracy = 0.9;
  EXPECT_EQ(source_probe_verdict(learned), SourceProbeVerdict::EasyToTellApart);
}

// By default the probe trains until its training accuracy stops rising (up to a cap), so the
// default verdict does not come from an under-trained model.
TEST(FfrSourceProbe, DefaultTrainsUntilTrainingAccuracyPlateaus) {
  FFR_REQUIRE_FASHION_MNIST();
  SourceProbeConfig c;
  EXPECT_GE(c.epochs, 20) << "the cap";
  EXPECT_GT(c.patience, 0);
  c.manifest = testing::TinyDataSet::manifest();
  c.model = "resnet_tiny";
  c.learning_rate = 3e-3;
  c.batch_size = 32;
  c.device = "cpu";
  c.loader_workers = 1;
  c.epochs = 40;
  const SourceProbeResult r = probe_source(c);
  EXPECT_LT(r.epochs_run, c.epochs) << "stopped at the plateau";
  EXPECT_EQ(int64_t(r.train_loss.size()), r.epochs_run);
  EXPECT_TRUE(r.learned);
  EXPECT_GT(r.train_real_accuracy, 0.9);
  EXPECT_GT(r.train_synthetic_accuracy, 0.9);
  EXPECT_EQ(r.verdict, SourceProbeVerdict::EasyToTellApart);
}

TEST(FfrSourceProbe, BadConfigurationIsRefused) {
  FFR_REQUIRE_FASHION_MNIST();
  SourceProbeConfig c;
  c.manifest = testing::TinyDataSet::manifest();
  c.epochs = 0;
  data::testing::expect_input_error([&] { probe_source(c); }, {"epochs"});
}

}  // namespace
}  // namespace ffr
