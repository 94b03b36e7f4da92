#include "kernels/pooling.h"

#include "engine/error.h"
#include "tests/testing.h"

#include <numeric>

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

using Pair = std::array<int64_t, 2>;

struct PoolCase {
  const char* name;
  Shape x;
  Pair kernel, stride, padding;
};

const std::vector<PoolCase> kCases = {
    {"3x3 stride 2 padding 1 (ResNet)", {2, 3, 7, 6}, {3, 3}, {2, 2}, {1, 1}},
    {"2x2 stride 2", {1, 2, 6, 4}, {2, 2}, {2, 2}, {0, 0}},
    {"3x2 stride (1, 2) padding (1, 0)", {2, 2, 5, 7}, {3, 2}, {1, 2}, {1, 0}},
    {"3x3 stride 1 (overlapping windows)", {1, 2, 5, 5}, {3, 3}, {1, 1}, {1, 1}},
};

// Distinct values in [-1, 1], at least 2/n apart: max pooling is differentiable only without ties,
// and finite differences of 1e-6 never reorder them.
Tensor distinct_values(const Shape& shape, Rng& rng, DType dtype = DType::Float64) {
  const int64_t n = shape_numel(shape);
  std::vector<double> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0.0);
  rng.shuffle(v);
  for (double& e : v) e = (e + 0.5) * 2.0 / double(n) - 1.0;
  return Tensor::from_vector(v, shape, dtype);
}

// 0, 1, ..., 15 in one 4x4 plane.
Tensor arange_4x4() {
  std::vector<float> v(16);
  std::iota(v.begin(), v.end(), 0.0f);
  return Tensor::from_vector(v, {1, 1, 4, 4});
}

TEST(Pool, MaxGradientsMatchFiniteDifferences) {
  Rng rng(51);
  for (const PoolCase& c : kCases) {
    SCOPED_TRACE(c.name);
    expect_gradients_match([c](const auto& in) { return max_pool2d(in[0], c.kernel, c.stride, c.padding); },
                           {distinct_values(c.x, rng)});
  }
}

TEST(Pool, AvgGradientsMatchFiniteDifferences) {
  Rng rng(52);
  for (const PoolCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Tensor x = random_tensor(c.x, rng);
    expect_gradients_match([c](const auto& in) { return avg_pool2d(in[0], c.kernel, c.stride, c.padding); }, {x});
    expect_gradients_match([c](const auto& in) { return avg_pool2d(in[0], c.kernel, c.stride, c.padding, false); },
                           {x});
  }
}

TEST(Pool, GlobalAvgGradientsMatchFiniteDifferences) {
  Rng rng(53);
  expect_gradients_match([](const auto& in) { return global_avg_pool2d(in[0]); }, {random_tensor({3, 4, 3, 5}, rng)});
}

TEST(Pool, MaxValuesMatchHandComputation) {
  Tensor x = arange_4x4();
  EXPECT_EQ(max_pool2d(x, {2, 2}, {2, 2}).to_vector<float>(), (std::vector<float>{5, 7, 13, 15}));
  // 3x3 stride 2 padding 1: windows over rows/cols [0, 1] and [1, 3].
  EXPECT_EQ(max_pool2d(x, {3, 3}, {2, 2}, {1, 1}).to_vector<float>(), (std::vector<float>{5, 7, 13, 15}));
  // Padding is -inf, never 0: an all-negative input keeps its own maxima.
  Tensor negative = Tensor::from_vector(std::vector<float>{-5, -6, -7, -8}, {1, 1, 2, 2});
  EXPECT_EQ(max_pool2d(negative, {3, 3}, {1, 1}, {1, 1}).to_vector<float>(), (std::vector<float>{-5, -5, -5, -5}));
}

TEST(Pool, MaxBackwardRoutesToTheArgmax) {
  Tensor x = arange_4x4().to(DType::Float64).set_requires_grad(true);
  max_pool2d(x, {2, 2}, {2, 2}).backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}));
  std::vector<double> expected(16, 0.0);
  expected[5] = 1;
  expected[7] = 2;
  expected[13] = 3;
  expected[15] = 4;
  EXPECT_EQ(x.grad().to_vector<double>(), expected);
  // Overlapping windows that share a maximum add their gradients there.
  Tensor y = Tensor::from_vector(std::vector<double>{0, 1, 9, 2, 3}, {1, 1, 1, 5}).set_requires_grad(true);
  max_pool2d(y, {1, 3}, {1, 1}).backward(Tensor::ones({1, 1, 1, 3}, DType::Float64));
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{0, 0, 3, 0, 0}));
}

TEST(Pool, AvgValuesMatchHandComputation) {
  Tensor x = arange_4x4();
  EXPECT_EQ(avg_pool2d(x, {2, 2}, {2, 2}).to_vector<float>(), (std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f}));
  // 3x3 stride 2 padding 1, top-left window holds 0 + 1 + 4 + 5 = 10 (and 5 padded zeros):
  // counted in the divisor by default (10 / 9), or not (10 / 4).
  const std::vector<float> with_pad = avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}).to_vector<float>();
  EXPECT_FLOAT_EQ(with_pad[0], 10.0f / 9.0f);
  EXPECT_FLOAT_EQ(with_pad[3], (5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15) / 9.0f);
  const std::vector<float> without_pad = avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, false).to_vector<float>();
  EXPECT_FLOAT_EQ(without_pad[0], 2.5f);
  EXPECT_FLOAT_EQ(without_pad[1], (1 + 2 + 3 + 5 + 6 + 7) / 6.0f);
}

TEST(Pool, GlobalAvgValuesMatchHandComputation) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2});
  Tensor y = global_avg_pool2d(x);
  EXPECT_EQ(y.shape(), (Shape{1, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2.5f, 25.0f}));
}

TEST(Pool, BadShapesThrow) {
  Tensor x = Tensor::zeros({1, 1, 4, 4});
  EXPECT_THROW(max_pool2d(Tensor::zeros({1, 4, 4}), {2, 2}, {2, 2}), Error);  // not 4-D
  EXPECT_THROW(max_pool2d(x, {3, 3}, {1, 1}, {2, 2}), Error);                // padding > kernel / 2
  EXPECT_THROW(max_pool2d(x, {5, 5}, {1, 1}), Error);                        // window > input
  EXPECT_THROW(max_pool2d(x, {0, 2}, {1, 1}), Error);                        // empty window
  EXPECT_THROW(avg_pool2d(x, {2, 2}, {0, 1}), Error);                        // stride 0
  EXPECT_THROW(avg_pool2d(x, {2, 2}, {1, 1}, {-1, 0}), Error);               // negative padding
  EXPECT_THROW(global_avg_pool2d(Tensor::zeros({2, 3})), Error);             // not 4-D
}

// ---- CUDA against the CPU reference ----

TEST(PoolCuda, MatchesCpuFloat32) {
  FFR_REQUIRE_CUDA();
  Rng rng(61);
  const testing::CompareOptions exact{1e-6, 1e-6, true};
  for (const PoolCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Tensor x = distinct_values(c.x, rng, DType::Float32);
    expect_cuda_matches_cpu([c](const auto& in) { return max_pool2d(in[0], c.kernel, c.stride, c.padding); }, {x},
                            exact);
    expect_cuda_matches_cpu([c](const auto& in) { return avg_pool2d(in[0], c.kernel, c.stride, c.padding); }, {x},
                            exact);
    expect_cuda_matches_cpu(
        [c](const auto& in) { return avg_pool2d(in[0], c.kernel, c.stride, c.padding, false); }, {x}, exact);
  }
  // ResNet-50's shapes: the stem pool on 112x112 and the head's 7x7 global pool.
  Tensor stem = distinct_values({2, 8, 112, 112}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return max_pool2d(in[0], {3, 3}, {2, 2}, {1, 1}); }, {stem}, exact);
  Tensor head = random_tensor({4, 2048, 7, 7}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return global_avg_pool2d(in[0]); }, {head}, {1e-5, 1e-6, true});
}

TEST(PoolCuda, BFloat16MatchesCpuOnRoundedInputs) {
  FFR_REQUIRE_CUDA();
  Rng rng(62);
  auto bf16_on_cuda = [](const Tensor& t) { return t.is_cuda() ? t.to(DType::BFloat16) : t; };
  // Distinct after bf16 rounding: 8 bits of mantissa separate 2/n-spaced values only for small n.
  Tensor x = random_tensor({2, 3, 9, 9}, rng, DType::Float32).to(DType::BFloat16).to(DType::Float32);
  Tensor small = distinct_values({1, 2, 8, 8}, rng, DType::Float32).to(DType::BFloat16).to(DType::Float32);
  const testing::CompareOptions bf16{2e-2, 2e-2, true};
  expect_cuda_matches_cpu(
      [&](const auto& in) { return max_pool2d(bf16_on_cuda(in[0]), {3, 3}, {2, 2}, {1, 1}).to(DType::Float32); },
      {small}, bf16);
  expect_cuda_matches_cpu(
      [&](const auto& in) { return avg_pool2d(bf16_on_cuda(in[0]), {3, 3}, {2, 2}, {1, 1}).to(DType::Float32); }, {x},
      bf16);
  expect_cuda_matches_cpu([&](const auto& in) { return global_avg_pool2d(bf16_on_cuda(in[0])).to(DType::Float32); },
                          {x}, bf16);
}

TEST(PoolCuda, MaxBackwardWithOverlapIsBitIdentical) {
  FFR_REQUIRE_CUDA();
  Rng rng(63);
  Tensor x = distinct_values({4, 16, 56, 56}, rng, DType::Float32).cuda().set_requires_grad(true);
  Tensor gy = random_tensor({4, 16, 28, 28}, rng, DType::Float32).cuda();
  max_pool2d(x, {3, 3}, {2, 2}, {1, 1}).backward(gy);
  const std::vector<float> first = x.grad().to_vector<float>();
  x.zero_grad();
  max_pool2d(x, {3, 3}, {2, 2}, {1, 1}).backward(gy);
  EXPECT_EQ(x.grad().to_vector<float>(), first);
}

}  // namespace
}  // namespace ffr
