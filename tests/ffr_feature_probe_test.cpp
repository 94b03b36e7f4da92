// ffr/feature_probe: the linear probe on a model's penultimate features (real vs synthetic) and its
// PCA embedding, on the tiny Spurious Fashion-MNIST with an untrained tiny ResNet (seconds).
#include "data/manifest.h"
#include "engine/rng.h"
#include "ffr/feature_probe.h"
#include "ffr_test_support.h"
#include "layers/model_zoo.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace ffr {
namespace {

using testing::TinyDataSet;

TEST(FfrFeatureProbe, ScoresHeldOutImagesOfBothSourcesAndEmbedsThem) {
  FFR_REQUIRE_FASHION_MNIST();
  const data::Manifest manifest = data::read_manifest(TinyDataSet::manifest());
  Rng rng(0);
  std::unique_ptr<Classifier> model = make_model("resnet_tiny", manifest.info.num_classes(), rng, 16);
  EvalOptions eval;
  eval.loader.image_size = 16;
  eval.loader.workers = 1;
  eval.batch_size = 64;
  const FeatureProbeResult r = probe_features(*model, manifest, eval);
  EXPECT_GT(r.fit_per_source, 0);
  EXPECT_GT(r.scored_per_source, 0);
  EXPECT_GE(r.accuracy, 0.0);
  EXPECT_LE(r.accuracy, 1.0);
  EXPECT_NEAR(r.accuracy, (r.real_accuracy + r.synthetic_accuracy) / 2, 1e-9) << "equal counts per source";
  const size_t images = size_t(2 * (r.fit_per_source + r.scored_per_source));
  EXPECT_EQ(r.pca_x.size(), images);
  EXPECT_EQ(r.pca_y.size(), images);
  EXPECT_EQ(std::count(r.pca_source.begin(), r.pca_source.end(), 1), int64_t(images / 2));
  EXPECT_GT(r.pca_explained[0], 0.0);
  EXPECT_GE(r.pca_explained[0] + 1e-9, r.pca_explained[1]) << "components in order";
  EXPECT_LE(r.pca_explained[0] + r.pca_explained[1], 1.0 + 1e-9);
  const std::string svg = feature_embedding_svg(r, "tiny <model>");
  EXPECT_EQ(size_t(std::count(svg.begin(), svg.end(), '\n')) > images, true);
  EXPECT_NE(svg.find("tiny &lt;model&gt;"), std::string::npos);

  // Deterministic in its seed.
  const FeatureProbeResult again = probe_features(*model, manifest, eval);
  EXPECT_EQ(again.accuracy, r.accuracy);
  EXPECT_EQ(again.pca_x, r.pca_x);
}

TEST(FfrFeatureProbe, RefusesDataWithoutHeldOutSyntheticImages) {
  FFR_REQUIRE_FASHION_MNIST();
  data::Manifest manifest = data::read_manifest(TinyDataSet::manifest());
  manifest.samples.erase(std::remove_if(manifest.samples.begin(), manifest.samples.end(),
                                        [](const data::Sample& s) {
                                          return s.source == data::Source::Synthetic && s.split != data::Split::Train;
                                        }),
                         manifest.samples.end());
  Rng rng(0);
  std::unique_ptr<Classifier> model = make_model("resnet_tiny", manifest.info.num_classes(), rng, 16);
  EvalOptions eval;
  eval.loader.image_size = 16;
  data::testing::expect_input_error([&] { probe_features(*model, manifest, eval); },
                                    {"manifest.csv", "2 held-out images of each source"});
}

}  // namespace
}  // namespace ffr
