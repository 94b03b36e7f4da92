// The ResNet inference plan (layers/resnet_inference_plan.h): its features against the model's
// own eval-mode forward, with random batch-norm statistics so the folding is exercised, on both
// stems (7x7 + max-pool and 3x3), several batch sizes and a repeated call; no reference (slow)
// oneDNN kernels; and a snapshot that ignores later weight changes. Skipped, saying so, in a
// build without oneDNN.
#include "layers/inference_plan.h"

#include "engine/autograd.h"
#include "layers/conv_bn.h"
#include "layers/model_zoo.h"
#include "tests/testing.h"

#include <gtest/gtest.h>

namespace ffr {
namespace {

using testing::expect_close;
using testing::random_tensor;

// Batch-norm layers with statistics and affine parameters far from the identity.
void randomise_batch_norms(Classifier& model, Rng& rng) {
  for (BatchNorm2d* bn : batch_norm_layers(model)) {
    const int64_t c = bn->weight.numel();
    bn->weight.copy_(random_tensor({c}, rng, DType::Float32, 0.5, 1.5));
    bn->bias.copy_(random_tensor({c}, rng, DType::Float32, -0.5, 0.5));
    bn->running_mean.copy_(random_tensor({c}, rng, DType::Float32, -0.3, 0.3));
    bn->running_var.copy_(random_tensor({c}, rng, DType::Float32, 0.5, 2.0));
  }
}

TEST(ResNetInferencePlan, MatchesTheModelsEvalForward) {
#ifndef FFR_WITH_ONEDNN
  GTEST_SKIP() << "built without oneDNN (FFR_ENABLE_ONEDNN=OFF or libdnnl-dev missing): no inference plans";
#else
  for (const char* name : {"resnet_demo", "resnet_tiny"}) {
    SCOPED_TRACE(name);
    Rng rng(91);
    std::unique_ptr<Classifier> model = make_model(name, 10, rng);
    randomise_batch_norms(*model, rng);
    model->eval();
    std::unique_ptr<InferencePlan> plan = make_inference_plan(*model);
    ASSERT_NE(plan, nullptr);
    NoGradGuard no_grad;
    for (int64_t batch : {1, 3, 1}) {  // a shape seen before reuses its program
      SCOPED_TRACE("batch " + std::to_string(batch));
      Tensor images = random_tensor({batch, 3, 32, 32}, rng, DType::Float32, -2.0, 2.0);
      Tensor expected = model->features(images);
      Tensor got = plan->features(images);
      ASSERT_EQ(got.shape(), expected.shape());
      expect_close(got, expected, 1e-4, 1e-4, "plan vs model features");
    }
    EXPECT_EQ(plan->describe().find("ref"), std::string::npos) << plan->describe();
  }
#endif
}

TEST(ResNetInferencePlan, IsASnapshotOfTheWeights) {
#ifndef FFR_WITH_ONEDNN
  GTEST_SKIP() << "built without oneDNN: no inference plans";
#else
  Rng rng(92);
  std::unique_ptr<Classifier> model = make_model("resnet_tiny", 4, rng);
  model->eval();
  std::unique_ptr<InferencePlan> plan = make_inference_plan(*model);
  ASSERT_NE(plan, nullptr);
  NoGradGuard no_grad;
  Tensor images = random_tensor({2, 3, 16, 16}, rng, DType::Float32);
  const std::vector<float> before = plan->features(images).to_vector<float>();
  randomise_batch_norms(*model, rng);  // the model changes; the plan does not see it
  EXPECT_EQ(plan->features(images).to_vector<float>(), before);
  EXPECT_NE(model->features(images).to_vector<float>(), before);
#endif
}

TEST(InferencePlan, NoneForModelsWithoutOne) {
  Rng rng(93);
  std::unique_ptr<Classifier> vit = make_model("vit_tiny", 4, rng);
  EXPECT_EQ(make_inference_plan(*vit), nullptr);
}

}  // namespace
}  // namespace ffr
