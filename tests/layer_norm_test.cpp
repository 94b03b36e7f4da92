#include "kernels/layer_norm.h"
#include "engine/error.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;


Tensor affine(const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); }

TEST(LayerNorm, Gradients) {
  Rng rng(21);
  for (const Shape& shape : {Shape{3, 5}, Shape{2, 3, 7}, Shape{4, 1, 2}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t d = shape.back();
    Tensor x = random_tensor(shape, rng), w = random_tensor({d}, rng, DType::Float64, 0.5, 1.5);
    Tensor b = random_tensor({d}, rng);
    expect_gradients_match(affine, {x, w, b});
    expect_gradients_match([](const auto& in) { return layer_norm(in[0], Tensor(), Tensor()); }, {x});
    expect_gradients_match([](const auto& in) { return layer_norm(in[0], in[1], Tensor(), 0.1); }, {x, w});
  }
}

TEST(LayerNorm, ValuesMatchHandComputation) {
  // Row 0: mean 2.5, biased variance 1.25. Row 1 is constant: variance 0, xhat = 0 (eps keeps
  // rstd finite), so y = bias.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 5, 5, 5}, {2, 4});
  Tensor w = Tensor::from_vector(std::vector<double>{1, 2, 1, 2}, {4});
  Tensor b = Tensor::from_vector(std::vector<double>{0, 1, 0, -1}, {4});
  const double s = 1.0 / std::sqrt(1.25 + 1e-5);
  const std::vector<double> expected = {-1.5 * s, -0.5 * s * 2 + 1, 0.5 * s, 1.5 * s * 2 - 1, 0, 1, 0, -1};
  testing::expect_close(layer_norm(x, w, b, 1e-5), Tensor::from_vector(expected, {2, 4}), 1e-12, 1e-12, "y");

  // Without an affine part each row has mean 0 and (biased) variance 1 - eps-ish.
  Tensor y = layer_norm(Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {1, 4}), Tensor(), Tensor());
  const std::vector<float> v = y.to_vector<float>();
  EXPECT_NEAR(v[0] + v[1] + v[2] + v[3], 0.0, 1e-6);
  EXPECT_NEAR((v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3]) / 4, 1.25 / (1.25 + 1e-5), 1e-6);
}

TEST(LayerNorm, ParameterGradientsAreColumnSums) {
  // With dy = 1: dbias = rows per column, dweight = column sums of xhat, and each row of dx sums
  // to zero (shifting a row's inputs does not change its output).
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 0, 4, 0, 4}, {2, 4});
  Tensor w = Tensor::from_vector(std::vector<double>{1, 2, 1, 2}, {4}).set_requires_grad(true);
  Tensor b = Tensor::from_vector(std::vector<double>{0, 0, 0, 0}, {4}).set_requires_grad(true);
  x.set_requires_grad(true);
  layer_norm(x, w, b, 0.0).backward(Tensor::ones({2, 4}, DType::Float64));
  const double s = 1.0 / std::sqrt(1.25);
  testing::expect_close(b.grad(), Tensor::from_vector(std::vector<double>{2, 2, 2, 2}, {4}), 1e-12, 1e-12, "dbias");
  const std::vector<double> dweight = {-1.5 * s - 1, -0.5 * s + 1, 0.5 * s - 1, 1.5 * s + 1};
  testing::expect_close(w.grad(), Tensor::from_vector(dweight, {4}), 1e-12, 1e-12, "dweight");
  const std::vector<double> dx = x.grad().to_vector<double>();
  EXPECT_NEAR(dx[0] + dx[1] + dx[2] + dx[3], 0.0, 1e-12);
  EXPECT_NEAR(dx[4] + dx[5] + dx[6] + dx[7], 0.0, 1e-12);
}

TEST(LayerNorm, Errors) {
  Tensor x = Tensor::zeros({2, 4});
  EXPECT_THROW(layer_norm(x, Tensor::ones({3}), Tensor()), Error);
  EXPECT_THROW(layer_norm(x, Tensor(), Tensor::ones({4, 1})), Error);
  EXPECT_THROW(layer_norm(x, Tensor::ones({4}, DType::Float64), Tensor()), Error);
  EXPECT_THROW(layer_norm(Tensor::zeros({2, 0}), Tensor(), Tensor()), Error);
  EXPECT_THROW(layer_norm(x, Tensor(), Tensor(), -1.0), Error);
  EXPECT_THROW(layer_norm(Tensor::zeros({2, 4}, DType::Int64), Tensor(), Tensor()), Error);
}

TEST(LayerNormCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(22);
  // ViT rows (D = 768, many row chunks for dweight), D not a multiple of 32, D past 1024.
  for (const Shape& shape : {Shape{4, 50, 768}, Shape{300, 33}, Shape{3, 1100}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t d = shape.back();
    Tensor x = random_tensor(shape, rng, DType::Float32, -2.0, 3.0);
    Tensor w = random_tensor({d}, rng, DType::Float32, 0.5, 1.5), b = random_tensor({d}, rng, DType::Float32);
    // float32 sums of up to 1100 terms (GPU) against double sums (CPU).
    const testing::CompareOptions tol{1e-4, 1e-5, true};
    expect_cuda_matches_cpu(affine, {x, w, b}, tol);
    expect_cuda_matches_cpu([](const auto& in) { return layer_norm(in[0], Tensor(), Tensor()); }, {x}, tol);
    expect_cuda_matches_cpu([](const auto& in) { return layer_norm(in[0], in[1], Tensor()); }, {x, w}, tol);
  }
}

TEST(LayerNormCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(23);
  Tensor x = random_tensor({2, 50, 768}, rng, DType::Float32, -2.0, 3.0);
  Tensor w = random_tensor({768}, rng, DType::Float32, 0.5, 1.5), b = random_tensor({768}, rng, DType::Float32);
  // bf16 rounding: rtol of 2.5 bf16 ulps; atol for values near zero (float32 accumulation).
  expect_cuda_matches_cpu(testing::in_bfloat16(affine), {x, w, b}, {1e-2, 1e-4, true});
}

TEST(LayerNormCuda, ParameterGradientsBitIdenticalRunToRun) {
  FFR_REQUIRE_CUDA();
  Rng rng(24);
  Tensor x = random_tensor({4096, 768}, rng, DType::Float32).cuda();
  Tensor gy = random_tensor({4096, 768}, rng, DType::Float32).cuda();
  std::vector<float> first_w, first_b;
  for (int run = 0; run < 3; ++run) {
    Tensor w = Tensor::ones({768}, DType::Float32, Device::cuda()).set_requires_grad(true);
    Tensor b = Tensor::zeros({768}, DType::Float32, Device::cuda()).set_requires_grad(true);
    layer_norm(x, w, b).backward(gy);
    if (run == 0) {
      first_w = w.grad().to_vector<float>();
      first_b = b.grad().to_vector<float>();
    } else {
      EXPECT_EQ(w.grad().to_vector<float>(), first_w);
      EXPECT_EQ(b.grad().to_vector<float>(), first_b);
    }
  }
}

}  // namespace
}  // namespace ffr
