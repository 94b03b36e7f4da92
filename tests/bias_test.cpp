#include "kernels/bias.h"
#include "engine/error.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_close;
using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

Tensor bias_op(const std::vector<Tensor>& in) { return add_bias(in[0], in[1]); }
Tensor column_sum_op(const std::vector<Tensor>& in) { return column_sum(in[0]); }

TEST(Bias, GradientsMatchFiniteDifferences) {
  Rng rng(70);
  expect_gradients_match(bias_op, {random_tensor({5, 3}, rng, DType::Float64), random_tensor({3}, rng, DType::Float64)});
  expect_gradients_match(bias_op,
                         {random_tensor({2, 4, 3}, rng, DType::Float64), random_tensor({3}, rng, DType::Float64)});
  expect_gradients_match(column_sum_op, {random_tensor({6, 2, 5}, rng, DType::Float64)});
}

// The same values as the generic broadcast add and reduction it replaces in Linear.
TEST(Bias, MatchesBroadcastAddAndSum) {
  Rng rng(71);
  Tensor x = random_tensor({7, 3, 11}, rng, DType::Float64);
  Tensor b = random_tensor({11}, rng, DType::Float64);
  expect_close(add_bias(x, b), add(x, b), 0, 0, "add_bias");
  expect_close(column_sum(x), sum(x, {0, 1}), 1e-15, 1e-15, "column_sum");
  EXPECT_EQ(column_sum(Tensor::zeros({0, 4}, DType::Float64)).to_vector<double>(), std::vector<double>(4, 0.0));
}

TEST(Bias, HandComputation) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor b = Tensor::from_vector(std::vector<float>{10, 20}, {2});
  EXPECT_EQ(add_bias(x, b).to_vector<float>(), (std::vector<float>{11, 22, 13, 24, 15, 26}));
  EXPECT_EQ(column_sum(x).to_vector<float>(), (std::vector<float>{9, 12}));
}

TEST(Bias, FrozenBiasGetsNoGradient) {
  Rng rng(72);
  Tensor x = random_tensor({4, 3}, rng, DType::Float64).set_requires_grad(true);
  Tensor b = random_tensor({3}, rng, DType::Float64);
  sum(add_bias(x, b)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>(12, 1.0));
  EXPECT_FALSE(b.grad().defined());
}

TEST(Bias, BadInputsAreErrors) {
  Rng rng(73);
  Tensor x = random_tensor({4, 3}, rng, DType::Float32);
  EXPECT_THROW(add_bias(x, random_tensor({4}, rng, DType::Float32)), Error);
  EXPECT_THROW(add_bias(x, random_tensor({3}, rng, DType::Float64)), Error);
  EXPECT_THROW(add_bias(x, random_tensor({1, 3}, rng, DType::Float32)), Error);
  EXPECT_THROW(column_sum(Tensor::full({}, 1.0)), Error);
}

// ---- CUDA ----

// Shapes: ViT-B/32's projections at batch 256 (12800 rows: 50 slabs), columns not a multiple of
// 32 or 256, one row, one column, a 3-D input.
const std::vector<std::pair<Shape, int64_t>> kCudaShapes = {
    {{256 * 50, 768}, 768}, {{300, 37}, 37}, {{1, 1000}, 1000}, {{513, 1}, 1}, {{7, 3, 259}, 259}};

TEST(BiasCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(74);
  for (const auto& [shape, columns] : kCudaShapes) {
    SCOPED_TRACE(shape_str(shape));
    Tensor x = random_tensor(shape, rng, DType::Float32);
    Tensor b = random_tensor({columns}, rng, DType::Float32);
    // float32 sums of up to 12800 rows (GPU) against double (CPU).
    expect_cuda_matches_cpu(bias_op, {x, b}, {1e-4, 1e-4, true});
    expect_cuda_matches_cpu(column_sum_op, {x}, {1e-4, 1e-4, true});
  }
}

TEST(BiasCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(75);
  expect_cuda_matches_cpu(testing::in_bfloat16(bias_op),
                          {random_tensor({300, 37}, rng, DType::Float32), random_tensor({37}, rng, DType::Float32)},
                          {1e-2, 1e-2, true});
}

TEST(BiasCuda, ColumnSumBitIdenticalRunToRun) {
  FFR_REQUIRE_CUDA();
  Rng rng(76);
  Tensor x = random_tensor({70000, 33}, rng, DType::Float32).cuda();
  const std::vector<float> first = column_sum(x).cpu().to_vector<float>();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(column_sum(x).cpu().to_vector<float>(), first);
}

}  // namespace
}  // namespace ffr
