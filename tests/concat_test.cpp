#include "kernels/concat.h"
#include "engine/error.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

const testing::CompareOptions kExact{0.0, 1e-30, true};  // concat only copies

TEST(Concat, Gradients) {
  Rng rng(21);
  Tensor a = random_tensor({2, 3, 4}, rng), b = random_tensor({2, 1, 4}, rng), c = random_tensor({2, 5, 4}, rng);
  expect_gradients_match([](const auto& in) { return concat(in, 1); }, {a, b, c});
  expect_gradients_match([](const auto& in) { return concat(in, -2); }, {a, b, c});
  Tensor d = random_tensor({3, 3, 4}, rng);
  expect_gradients_match([](const auto& in) { return concat(in, 0); }, {a, d});
  Tensor e = random_tensor({2, 3, 2}, rng);
  expect_gradients_match([](const auto& in) { return concat(in, 2); }, {a, e, a});
}

TEST(Concat, ValuesMatchHandComputation) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector(std::vector<float>{5, 6}, {1, 2});
  Tensor rows = concat({a, b}, 0);
  EXPECT_EQ(rows.shape(), (Shape{3, 2}));
  EXPECT_EQ(rows.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor c = Tensor::from_vector(std::vector<float>{7, 8}, {2, 1});
  Tensor cols = concat({c, a}, 1);
  EXPECT_EQ(cols.shape(), (Shape{2, 3}));
  EXPECT_EQ(cols.to_vector<float>(), (std::vector<float>{7, 1, 2, 8, 3, 4}));
  // An empty input contributes nothing; integer tensors concatenate too.
  EXPECT_EQ(concat({a, Tensor::zeros({2, 0})}, 1).to_vector<float>(), a.to_vector<float>());
  Tensor l = Tensor::from_vector(std::vector<int64_t>{1, 2}, {2});
  Tensor m = Tensor::from_vector(std::vector<int64_t>{3}, {1});
  EXPECT_EQ(concat({l, m}, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));
}

TEST(Concat, GradientReachesOnlyInputsThatWantIt) {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2}, {1, 2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector(std::vector<double>{3, 4, 5, 6}, {2, 2});
  Tensor y = concat({b, a}, 0);
  y.backward(Tensor::from_vector(std::vector<double>{10, 20, 30, 40, 50, 60}, {3, 2}));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{50, 60}));
  EXPECT_FALSE(b.grad().defined());
}

TEST(Concat, RejectsMismatchedInputs) {
  Tensor a = Tensor::zeros({2, 3});
  EXPECT_THROW(concat({}, 0), Error);
  EXPECT_THROW(concat({a, Tensor::zeros({2, 4})}, 0), Error);
  EXPECT_THROW(concat({a, Tensor::zeros({2, 3, 1})}, 0), Error);
  EXPECT_THROW(concat({a, Tensor::zeros({2, 3}, DType::Float64)}, 0), Error);
  EXPECT_THROW(concat({a, a}, 2), Error);
  EXPECT_THROW(concat({a, a}, -3), Error);
}

TEST(ConcatCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(22);
  // Rows of 16 floats (uint4 words), 3 floats (4-byte words), and ViT's class token + patches.
  Tensor a = random_tensor({4, 7, 16}, rng, DType::Float32), b = random_tensor({4, 2, 16}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return concat(in, 1); }, {a, b}, kExact);
  Tensor c = random_tensor({5, 3}, rng, DType::Float32), d = random_tensor({5, 1}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return concat(in, 1); }, {c, d, c}, kExact);
  expect_cuda_matches_cpu([](const auto& in) { return concat(in, 0); }, {c, c}, kExact);
  Tensor cls = random_tensor({8, 1, 768}, rng, DType::Float32), patches = random_tensor({8, 49, 768}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return concat(in, 1); }, {cls, patches}, kExact);
}

TEST(ConcatCuda, BFloat16CopiedExactly) {
  FFR_REQUIRE_CUDA();
  Rng rng(23);
  // 3 bf16 per row: 2-byte words; 8 per row: 16-byte words.
  Tensor a = random_tensor({6, 2, 3}, rng, DType::Float32).to(DType::BFloat16);
  Tensor b = random_tensor({6, 5, 3}, rng, DType::Float32).to(DType::BFloat16);
  expect_cuda_matches_cpu([](const auto& in) { return concat(in, 1); }, {a, b}, kExact);
  Tensor c = random_tensor({3, 8}, rng, DType::Float32).to(DType::BFloat16);
  expect_cuda_matches_cpu([](const auto& in) { return concat(in, 0); }, {c, c, c}, kExact);
}

}  // namespace
}  // namespace ffr
