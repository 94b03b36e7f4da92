// bf16 mixed precision end to end on the CPU: resnet_tiny and vit_tiny train with the trainer's
// optimizer (ffr/trainer.h make_optimizer) on an easy synthetic task, once in float32 and once in
// bf16 from the same initial weights and batches, and reach the same held-out accuracy within
// kAccuracyTolerance. Weights, gradients and Adam's moments stay float32 in bf16 mode.
#include "engine/autograd.h"
#include "engine/precision.h"
#include "engine/rng.h"
#include "ffr/trainer.h"
#include "kernels/cross_entropy.h"
#include "kernels/slice.h"
#include "layers/model_zoo.h"
#include "optim/adam.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

namespace ffr {
namespace {

constexpr int64_t kClasses = 4, kBatch = 32, kTrainImages = 512, kTestImages = 256;
// Absolute, in held-out accuracy: bf16 rounding changes the path of training a little, not
// where it gets on a task both learn.
constexpr double kAccuracyTolerance = 0.05;

// Class k: a bright (+3) quadrant k over Gaussian noise (std 0.5), all channels.
struct Images {
  Tensor x, y;
};
Images make_images(int64_t n, int64_t side, uint64_t seed) {
  Rng rng(seed);
  Tensor x = Tensor::normal({n, 3, side, side}, 0.0, 0.5, rng);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  float* p = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = int64_t(rng.below(kClasses));
    labels[size_t(i)] = k;
    const int64_t half = side / 2, top = (k / 2) * half, left = (k % 2) * half;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = top; h < top + half; ++h)
        for (int64_t w = left; w < left + half; ++w) p[((i * 3 + c) * side + h) * side + w] += 3.0f;
  }
  return {x, Tensor::from_vector(labels, {n})};
}

struct Outcome {
  double accuracy = 0.0;
  double last_loss = 0.0;
};

Outcome train(const std::string& model_name, int64_t side, Precision precision, int epochs) {
  PrecisionScope scope(precision);
  Rng rng(3);
  std::unique_ptr<Classifier> model = make_model(model_name, kClasses, rng, side);
  std::unique_ptr<Adam> optimizer = make_optimizer(*model, 5e-3, 1e-5);
  const Images train_set = make_images(kTrainImages, side, 11), test_set = make_images(kTestImages, side, 12);
  Outcome out;
  model->train();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (int64_t b = 0; b < kTrainImages / kBatch; ++b) {
      const Tensor x = slice(train_set.x, 0, b * kBatch, (b + 1) * kBatch);
      const Tensor y = slice(train_set.y, 0, b * kBatch, (b + 1) * kBatch);
      optimizer->zero_grad();
      const Tensor loss = cross_entropy(model->forward(x), y);
      loss.backward();
      optimizer->step();
      out.last_loss = loss.item();
    }
  }
  for (const auto& [name, p] : model->named_parameters()) {
    EXPECT_EQ(p.dtype(), DType::Float32) << name << ": master weights stay float32";
    EXPECT_EQ(p.grad().dtype(), DType::Float32) << name;
  }
  for (const auto& [name, t] : optimizer->state_tensors())
    if (t.ndim() > 0) EXPECT_EQ(t.dtype(), DType::Float32) << name << ": Adam's state stays float32";
  model->eval();
  NoGradGuard no_grad;
  const std::vector<float> logits = model->forward(test_set.x).to_vector<float>();
  const std::vector<int64_t> labels = test_set.y.to_vector<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < kTestImages; ++i) {
    const float* row = logits.data() + i * kClasses;
    correct += std::max_element(row, row + kClasses) - row == labels[size_t(i)];
  }
  out.accuracy = double(correct) / double(kTestImages);
  return out;
}

void expect_bf16_trains_like_fp32(const std::string& model_name, int64_t side, int epochs) {
  const Outcome fp32 = train(model_name, side, Precision::Float32, epochs);
  const Outcome bf16 = train(model_name, side, Precision::BFloat16, epochs);
  std::printf("%s: held-out accuracy fp32 %.3f, bf16 %.3f; last batch loss fp32 %.4f, bf16 %.4f\n",
              model_name.c_str(), fp32.accuracy, bf16.accuracy, fp32.last_loss, bf16.last_loss);
  EXPECT_GE(fp32.accuracy, 0.9) << model_name << ": the task should be easy in float32 (loss " << fp32.last_loss << ")";
  EXPECT_NEAR(bf16.accuracy, fp32.accuracy, kAccuracyTolerance)
      << model_name << ": fp32 " << fp32.accuracy << ", bf16 " << bf16.accuracy;
  EXPECT_NE(bf16.last_loss, fp32.last_loss) << model_name << ": bf16 mode trained exactly as float32";
}

TEST(BFloat16Training, ResNetTinyReachesFloat32Accuracy) { expect_bf16_trains_like_fp32("resnet_tiny", 16, 8); }
// vit_tiny at 8 px: its 4-pixel patches are the quadrants.
TEST(BFloat16Training, ViTTinyReachesFloat32Accuracy) { expect_bf16_trains_like_fp32("vit_tiny", 8, 8); }

}  // namespace
}  // namespace ffr
