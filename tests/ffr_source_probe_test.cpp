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

TEST(FfrSourceProbe, BadConfigurationIsRefused) {
  FFR_REQUIRE_FASHION_MNIST();
  SourceProbeConfig c;
  c.manifest = testing::TinyDataSet::manifest();
  c.epochs = 0;
  data::testing::expect_input_error([&] { probe_source(c); }, {"epochs"});
}

}  // namespace
}  // namespace ffr
