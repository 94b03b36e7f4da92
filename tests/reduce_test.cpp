#include "kernels/reduce.h"
#include "engine/error.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

TEST(Reduce, SumAndMeanValues) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum(x).to_vector<float>(), (std::vector<float>{21}));
  EXPECT_EQ(sum(x, {0}).to_vector<float>(), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(sum(x, {-1}, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(mean(x, {1}).to_vector<float>(), (std::vector<float>{2, 5}));
  EXPECT_EQ(sum_to_shape(x, {1, 3}).to_vector<float>(), (std::vector<float>{5, 7, 9}));
  EXPECT_THROW(sum(x, {2}), Error);
}

TEST(Reduce, Gradients) {
  Rng rng(5);
  Tensor x = random_tensor({2, 3, 4}, rng);
  expect_gradients_match([](const auto& in) { return sum(in[0]); }, {x});
  expect_gradients_match([](const auto& in) { return sum(in[0], {1}); }, {x});
  expect_gradients_match([](const auto& in) { return mean(in[0], {0, 2}, true); }, {x});
  expect_gradients_match([](const auto& in) { return sum_to_shape(in[0], {3, 1}); }, {x});
}

TEST(ReduceCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(6);
  Tensor x = random_tensor({8, 300, 17}, rng, DType::Float32);
  testing::CompareOptions tol{1e-5, 1e-4, true};
  expect_cuda_matches_cpu([](const auto& in) { return sum(in[0]); }, {x}, tol);
  expect_cuda_matches_cpu([](const auto& in) { return sum(in[0], {1}); }, {x}, tol);
  expect_cuda_matches_cpu([](const auto& in) { return mean(in[0], {0, 2}); }, {x}, tol);
  expect_cuda_matches_cpu([](const auto& in) { return sum(in[0], {2}, true); }, {x}, tol);
  expect_cuda_matches_cpu([](const auto& in) { return sum_to_shape(in[0], {300, 1}); }, {x}, tol);
}

TEST(ReduceCuda, BitIdenticalRunToRun) {
  FFR_REQUIRE_CUDA();
  Rng rng(7);
  Tensor x = random_tensor({4096, 513}, rng, DType::Float32).cuda();
  const std::vector<float> first = sum(x, {0}).to_vector<float>();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sum(x, {0}).to_vector<float>(), first);
}

}  // namespace
}  // namespace ffr
