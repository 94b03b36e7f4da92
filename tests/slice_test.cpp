#include "kernels/slice.h"
#include "engine/error.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

const testing::CompareOptions kExact{0.0, 1e-30, true};  // slices only copy

std::vector<float> iota(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = float(i);
  return v;
}

TEST(Slice, Gradients) {
  Rng rng(31);
  Tensor x = random_tensor({4, 5, 6}, rng);
  expect_gradients_match([](const auto& in) { return slice(in[0], 1, 1, 4); }, {x});
  expect_gradients_match([](const auto& in) { return slice(in[0], 2, 0, 6, 2); }, {x});
  expect_gradients_match([](const auto& in) { return slice(in[0], -1, -5, 100, 3); }, {x});
  expect_gradients_match([](const auto& in) { return slice(in[0], 0, -3, -1); }, {x});  // a view
  expect_gradients_match([](const auto& in) { return slice(in[0], 0, 1, 4, 2); }, {x});
}

TEST(Slice, ValuesMatchHandComputation) {
  Tensor x = Tensor::from_vector(iota(10), {10});
  EXPECT_EQ(slice(x, 0, 2, 8, 3).to_vector<float>(), (std::vector<float>{2, 5}));
  EXPECT_EQ(slice(x, 0, -3, 100).to_vector<float>(), (std::vector<float>{7, 8, 9}));
  EXPECT_EQ(slice(x, 0, -100, 2).to_vector<float>(), (std::vector<float>{0, 1}));
  EXPECT_EQ(slice(x, 0, 0, 10, 4).to_vector<float>(), (std::vector<float>{0, 4, 8}));
  EXPECT_EQ(slice(x, 0, 5, 2).shape(), (Shape{0}));
  Tensor m = Tensor::from_vector(iota(12), {3, 4});
  EXPECT_EQ(slice(m, 1, 1, 3).to_vector<float>(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(slice(m, -2, 1, 3).to_vector<float>(), (std::vector<float>{4, 5, 6, 7, 8, 9, 10, 11}));
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 8}, {2, 2});
  EXPECT_EQ(slice(labels, 1, 1, 2).to_vector<int64_t>(), (std::vector<int64_t>{6, 8}));
}

TEST(Slice, BackwardScattersIntoZeros) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad(true);
  slice(x, 1, 0, 3, 2).backward(Tensor::from_vector(std::vector<double>{10, 20, 30, 40}, {2, 2}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{10, 0, 20, 30, 0, 40}));
}

TEST(Slice, LeadingRangeIsAView) {
  Tensor x = Tensor::from_vector(iota(12), {1, 4, 3});
  Tensor v = slice(x, 1, 1, 3);
  EXPECT_EQ(v.raw_data(), static_cast<void*>(x.data<float>() + 3));
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
  // A view of a view starts from the first view's offset.
  EXPECT_EQ(slice(v, 1, 1, 2).to_vector<float>(), (std::vector<float>{6, 7, 8}));
  // Not contiguous in x: a copy.
  EXPECT_NE(slice(x, 2, 1, 2).raw_data(), x.raw_data());
}

TEST(Slice, RejectsBadArguments) {
  Tensor x = Tensor::zeros({2, 3});
  EXPECT_THROW(slice(x, 0, 0, 1, 0), Error);
  EXPECT_THROW(slice(x, 0, 1, 0, -1), Error);
  EXPECT_THROW(slice(x, 2, 0, 1), Error);
  EXPECT_THROW(slice(x, -3, 0, 1), Error);
}

TEST(SliceCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(32);
  Tensor x = random_tensor({6, 50, 17}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return slice(in[0], 1, 3, 40, 3); }, {x}, kExact);
  expect_cuda_matches_cpu([](const auto& in) { return slice(in[0], -1, 1, 16); }, {x}, kExact);
  expect_cuda_matches_cpu([](const auto& in) { return slice(in[0], 0, 2, 5); }, {x}, kExact);  // a view
  expect_cuda_matches_cpu([](const auto& in) { return slice(in[0], 1, 0, 1); }, {x}, kExact);  // ViT's class token
  Tensor h = random_tensor({4, 10, 64}, rng, DType::Float32).to(DType::BFloat16);
  expect_cuda_matches_cpu([](const auto& in) { return slice(in[0], 1, 1, 10, 2); }, {h}, kExact);
  expect_cuda_matches_cpu([](const auto& in) { return slice(in[0], 2, 1, 64, 5); }, {h}, kExact);
}

}  // namespace
}  // namespace ffr
