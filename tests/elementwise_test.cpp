#include "kernels/elementwise.h"
#include "engine/error.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

// (a shape, b shape) pairs: same shape, trailing broadcast, both sides broadcasting, scalar.
const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{3, 4}, {3, 4}}, {{2, 3, 4}, {4}}, {{2, 1, 4}, {3, 1}}, {{5}, {1}}, {{1}, {2, 3}}};

Tensor positive(const Shape& shape, Rng& rng, DType dtype = DType::Float64) {
  return random_tensor(shape, rng, dtype, 0.5, 2.0);  // away from 0 for div/log/sqrt
}

TEST(Elementwise, BinaryGradients) {
  Rng rng(1);
  for (const auto& [sa, sb] : kShapePairs) {
    SCOPED_TRACE(shape_str(sa) + " with " + shape_str(sb));
    Tensor a = random_tensor(sa, rng), b = positive(sb, rng);
    expect_gradients_match([](const auto& in) { return add(in[0], in[1]); }, {a, b});
    expect_gradients_match([](const auto& in) { return sub(in[0], in[1]); }, {a, b});
    expect_gradients_match([](const auto& in) { return mul(in[0], in[1]); }, {a, b});
    expect_gradients_match([](const auto& in) { return div(in[0], in[1]); }, {a, b});
  }
}

TEST(Elementwise, UnaryGradients) {
  Rng rng(2);
  Tensor x = positive({3, 5}, rng);
  expect_gradients_match([](const auto& in) { return neg(in[0]); }, {x});
  expect_gradients_match([](const auto& in) { return exp(in[0]); }, {x});
  expect_gradients_match([](const auto& in) { return log(in[0]); }, {x});
  expect_gradients_match([](const auto& in) { return sqrt(in[0]); }, {x});
  expect_gradients_match([](const auto& in) { return add_scalar(in[0], 0.7); }, {x});
  expect_gradients_match([](const auto& in) { return mul_scalar(in[0], -1.3); }, {x});
  expect_gradients_match([](const auto& in) { return broadcast_to(in[0], {2, 3, 5}); }, {x});
}

TEST(Elementwise, ValuesMatchHandComputation) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
  EXPECT_EQ((a + b).to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ((a * b).to_vector<float>(), (std::vector<float>{10, 40, 90, 40, 100, 180}));
  Tensor c = Tensor::from_vector(std::vector<float>{2, 4}, {2, 1});
  EXPECT_EQ((a / c).to_vector<float>(), (std::vector<float>{0.5f, 1, 1.5f, 1, 1.25f, 1.5f}));
  EXPECT_THROW(add(a, Tensor::zeros({4})), Error);
}

TEST(Elementwise, GradientAccumulatesOverReuse) {
  // y = x * x + x: dy/dx = 2x + 1, with x used three times in the graph.
  Tensor x = Tensor::from_vector(std::vector<double>{1.5, -2.0}, {2}).set_requires_grad(true);
  Tensor y = add(mul(x, x), x);
  y.backward(Tensor::ones({2}, DType::Float64));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4.0, -3.0}));
  // A second backward accumulates into the same grad.
  add(mul(x, x), x).backward(Tensor::ones({2}, DType::Float64));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{8.0, -6.0}));
}

TEST(ElementwiseCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(3);
  for (const auto& [sa, sb] : kShapePairs) {
    Tensor a = random_tensor(sa, rng, DType::Float32), b = positive(sb, rng, DType::Float32);
    expect_cuda_matches_cpu([](const auto& in) { return add(in[0], in[1]); }, {a, b});
    expect_cuda_matches_cpu([](const auto& in) { return sub(in[0], in[1]); }, {a, b});
    expect_cuda_matches_cpu([](const auto& in) { return mul(in[0], in[1]); }, {a, b});
    expect_cuda_matches_cpu([](const auto& in) { return div(in[0], in[1]); }, {a, b});
  }
  Tensor x = positive({1000, 37}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return exp(in[0]); }, {x});
  expect_cuda_matches_cpu([](const auto& in) { return log(in[0]); }, {x});
  expect_cuda_matches_cpu([](const auto& in) { return sqrt(in[0]); }, {x});
  expect_cuda_matches_cpu([](const auto& in) { return neg(mul_scalar(add_scalar(in[0], 0.5), 3.0)); }, {x});
  expect_cuda_matches_cpu([](const auto& in) { return broadcast_to(in[0], {3, 1000, 37}); }, {x});
}

TEST(ElementwiseCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(4);
  Tensor a = random_tensor({64, 33}, rng, DType::Float32), b = positive({33}, rng, DType::Float32);
  // bf16 has 8 mantissa bits: relative error up to 2^-8 per rounding.
  Tensor y = mul(a.cuda().to(DType::BFloat16), b.cuda().to(DType::BFloat16)).to(DType::Float32).cpu();
  testing::expect_close(y, mul(a, b), 1e-2, 1e-2, "bf16 mul");
}

}  // namespace
}  // namespace ffr
