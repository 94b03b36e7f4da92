#include "kernels/activation.h"
#include "engine/error.h"
#include "tests/testing.h"

#include <cmath>
#include <limits>

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

// ReLU is not differentiable at 0: keep finite differences away from it (|x| >= 0.1).
Tensor away_from_zero(const Shape& shape, Rng& rng, DType dtype = DType::Float64) {
  std::vector<double> values(size_t(shape_numel(shape)));
  for (double& v : values) v = (rng.uniform() < 0.5 ? -1.0 : 1.0) * rng.uniform(0.1, 2.0);
  return Tensor::from_vector(values, shape, dtype);
}

TEST(Activation, Gradients) {
  Rng rng(51);
  Tensor x = away_from_zero({3, 4, 5}, rng);
  expect_gradients_match([](const auto& in) { return relu(in[0]); }, {x});
  Tensor g = random_tensor({4, 7}, rng, DType::Float64, -4.0, 4.0);
  expect_gradients_match([](const auto& in) { return gelu(in[0]); }, {g});
  expect_gradients_match([](const auto& in) { return gelu(in[0], GeluApproximation::Tanh); }, {g});
}

TEST(Activation, ValuesMatchHandComputation) {
  Tensor x = Tensor::from_vector(std::vector<double>{-2.0, -1.0, 0.5, 1.0, 3.0}, {5});
  EXPECT_EQ(relu(x).to_vector<double>(), (std::vector<double>{0, 0, 0.5, 1.0, 3.0}));
  // From Python's math.erf / math.tanh in double precision.
  const std::vector<double> gelu_erf{-0.04550026389635842, -0.15865525393145707, 0.34573123063700656,
                                     0.8413447460685429, 2.99595030590511};
  const std::vector<double> gelu_tanh{-0.04540230591222494, -0.15880800939172324, 0.34571400982514394,
                                      0.8411919906082768, 2.996362607918227};
  const std::vector<double> dgelu_erf{-0.08523180107819692, -0.08331547058768629, 0.8674951246561629,
                                      1.0833154705876864, 1.011945647204184};
  const std::vector<double> dgelu_tanh{-0.08609925662361825, -0.08296408384578252, 0.8673699035346424,
                                       1.0829640838457826, 1.0115841666309695};
  testing::expect_close(gelu(x), Tensor::from_vector(gelu_erf, {5}), 1e-14, 1e-15, "gelu erf");
  testing::expect_close(gelu(x, GeluApproximation::Tanh), Tensor::from_vector(gelu_tanh, {5}), 1e-14, 1e-15,
                        "gelu tanh");
  for (auto [approx, expected] : {std::pair{GeluApproximation::None, dgelu_erf},
                                  std::pair{GeluApproximation::Tanh, dgelu_tanh}}) {
    Tensor leaf = x.clone().set_requires_grad(true);
    gelu(leaf, approx).backward(Tensor::ones({5}, DType::Float64));
    testing::expect_close(leaf.grad(), Tensor::from_vector(expected, {5}), 1e-14, 1e-15, "gelu grad");
  }
}

TEST(Activation, ReluGradientIsZeroAtZeroAndNanPropagates) {
  Tensor x = Tensor::from_vector(std::vector<double>{-1.0, 0.0, 2.0}, {3}).set_requires_grad(true);
  relu(x).backward(Tensor::from_vector(std::vector<double>{5, 6, 7}, {3}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 7}));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(relu(Tensor::from_vector(std::vector<float>{nan}, {1})).item()));
}

TEST(Activation, BackwardLaunchersForFusedLayers) {
  const std::vector<float> dy{1, 2, 3}, y{0, 0.5f, 2}, x{-1, 0, 1};
  std::vector<float> dx(3);
  relu_backward_cpu(dy.data(), y.data(), dx.data(), 3, DType::Float32);
  EXPECT_EQ(dx, (std::vector<float>{0, 2, 3}));
  gelu_backward_cpu(dy.data(), x.data(), dx.data(), 3, DType::Float32, GeluApproximation::None);
  EXPECT_NEAR(dx[0], 1 * -0.08331547058768629, 1e-6);
  EXPECT_NEAR(dx[1], 2 * 0.5, 1e-6);
  EXPECT_NEAR(dx[2], 3 * 1.0833154705876864, 1e-6);
}

TEST(Activation, RejectsIntegerTensors) {
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, -2}, {2});
  EXPECT_THROW(relu(labels), Error);
  EXPECT_THROW(gelu(labels), Error);
  EXPECT_THROW(gelu(labels, GeluApproximation::Tanh), Error);
}

TEST(ActivationCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(52);
  // Device erff/tanhf/expf are within 2 ulp of libm, hence rtol 1e-5 rather than exact.
  const testing::CompareOptions tol{1e-5, 1e-6, true};
  Tensor x = random_tensor({1000, 37}, rng, DType::Float32, -6.0, 6.0);
  expect_cuda_matches_cpu([](const auto& in) { return relu(in[0]); }, {x}, tol);
  expect_cuda_matches_cpu([](const auto& in) { return gelu(in[0]); }, {x}, tol);
  expect_cuda_matches_cpu([](const auto& in) { return gelu(in[0], GeluApproximation::Tanh); }, {x}, tol);
}

TEST(ActivationCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(53);
  Tensor x = random_tensor({64, 33}, rng, DType::Float32, -4.0, 4.0).to(DType::BFloat16).to(DType::Float32);
  Tensor gy = random_tensor({64, 33}, rng, DType::Float32).to(DType::BFloat16).to(DType::Float32);
  for (GeluApproximation approx : {GeluApproximation::None, GeluApproximation::Tanh}) {
    Tensor leaf = x.cuda().to(DType::BFloat16).set_requires_grad(true);
    Tensor y = gelu(leaf, approx);
    y.backward(gy.cuda().to(DType::BFloat16));
    Tensor ref_leaf = x.clone().set_requires_grad(true);
    Tensor ref = gelu(ref_leaf, approx);
    ref.backward(gy);
    // Math in float32, one rounding to bf16 (relative 2^-8) on output and gradient.
    testing::expect_close(y.to(DType::Float32).cpu(), ref, 1e-2, 1e-2, "bf16 gelu");
    testing::expect_close(leaf.grad().to(DType::Float32).cpu(), ref_leaf.grad(), 1e-2, 1e-2, "bf16 gelu grad");
  }
  Tensor r = relu(x.cuda().to(DType::BFloat16)).to(DType::Float32).cpu();
  testing::expect_close(r, relu(x), 0.0, 1e-30, "bf16 relu (exact)");
}

}  // namespace
}  // namespace ffr
