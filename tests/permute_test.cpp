#include "kernels/permute.h"
#include "engine/error.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

// Permutes are pure copies: CUDA must agree with CPU bit for bit (atol only keeps 0/0 out).
const testing::CompareOptions kExact{0.0, 1e-30, true};

TEST(Permute, Gradients) {
  Rng rng(11);
  Tensor x = random_tensor({2, 3, 4, 5}, rng);
  expect_gradients_match([](const auto& in) { return permute(in[0], {2, 0, 3, 1}); }, {x});
  expect_gradients_match([](const auto& in) { return permute(in[0], {0, 2, 3, 1}); }, {x});  // NCHW -> NHWC
  expect_gradients_match([](const auto& in) { return permute(in[0], {-1, 0, 1, 2}); }, {x});
  expect_gradients_match([](const auto& in) { return transpose(in[0], -1, -2); }, {x});
  expect_gradients_match([](const auto& in) { return transpose(in[0], 0, 2); }, {x});
  Tensor y = random_tensor({3, 1, 4}, rng);
  expect_gradients_match([](const auto& in) { return permute(in[0], {1, 2, 0}); }, {y});
}

TEST(Permute, ValuesMatchHandComputation) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor at = transpose(a, 0, 1);
  EXPECT_EQ(at.shape(), (Shape{3, 2}));
  EXPECT_EQ(at.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));

  // out[k][i][j] = x[i][j][k] with x[i][j][k] = 12 i + 4 j + k.
  std::vector<float> values(24);
  for (int i = 0; i < 24; ++i) values[size_t(i)] = float(i);
  Tensor x = Tensor::from_vector(values, {2, 3, 4});
  Tensor y = permute(x, {2, 0, 1});
  ASSERT_EQ(y.shape(), (Shape{4, 2, 3}));
  const std::vector<float> got = y.to_vector<float>();
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) EXPECT_EQ(got[size_t(k * 6 + i * 3 + j)], float(12 * i + 4 * j + k));

  // Moving only size-1 dims keeps the element order.
  Tensor z = Tensor::from_vector(std::vector<float>{7, 8, 9}, {1, 3, 1});
  EXPECT_EQ(permute(z, {2, 1, 0}).to_vector<float>(), (std::vector<float>{7, 8, 9}));
  EXPECT_EQ(permute(z, {2, 1, 0}).shape(), (Shape{1, 3, 1}));
}

TEST(Permute, AnyDtype) {
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor t = transpose(labels, 0, 1);
  EXPECT_EQ(t.dtype(), DType::Int64);
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 5, 2, 4, 6}));
  Tensor h = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2}, DType::BFloat16);
  EXPECT_EQ(transpose(h, 0, 1).to_vector<float>(), (std::vector<float>{1, 3, 5, 2, 4, 6}));
}

TEST(Permute, IndexerMergesAdjacentDims) {
  // NCHW -> NHWC: H and W stay neighbours, so it is a batch of [C, HW] -> [HW, C] transposes.
  const PermuteIndexer nhwc = make_permute_indexer({2, 3, 4, 5}, {0, 2, 3, 1});
  ASSERT_EQ(nhwc.ndim, 3);
  EXPECT_EQ(nhwc.out_sizes[0], 2);
  EXPECT_EQ(nhwc.out_sizes[1], 20);
  EXPECT_EQ(nhwc.out_sizes[2], 3);
  EXPECT_EQ(nhwc.in_strides[0], 60);
  EXPECT_EQ(nhwc.in_strides[1], 1);
  EXPECT_EQ(nhwc.in_strides[2], 20);
  EXPECT_TRUE(nhwc.is_batched_transpose());
  const PermuteIndexer identity = make_permute_indexer({2, 3, 4}, {0, 1, 2});
  EXPECT_EQ(identity.ndim, 1);
  EXPECT_EQ(identity.in_strides[0], 1);
  EXPECT_FALSE(make_permute_indexer({2, 3, 4}, {1, 0, 2}).is_batched_transpose());
}

TEST(Permute, IndexerOffsetsMatchTheCpuWalk) {
  // input_offset is what the CUDA kernel uses; the CPU walks an odometer instead. On an iota
  // input, output element i must hold its own input offset.
  const Shape shape{3, 1, 4, 2, 5};
  const std::vector<int> dims{3, 0, 4, 1, 2};
  std::vector<double> values(size_t(shape_numel(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = double(i);
  const std::vector<double> out = permute(Tensor::from_vector(values, shape), dims).to_vector<double>();
  const PermuteIndexer idx = make_permute_indexer(shape, dims);
  for (int64_t i = 0; i < idx.numel; ++i) EXPECT_EQ(double(idx.input_offset(i)), out[size_t(i)]) << "at " << i;
}

TEST(Permute, RejectsBadDims) {
  Tensor x = Tensor::zeros({2, 3, 4});
  EXPECT_THROW(permute(x, {0, 1}), Error);
  EXPECT_THROW(permute(x, {0, 0, 1}), Error);
  EXPECT_THROW(permute(x, {0, 1, 3}), Error);
  EXPECT_THROW(permute(x, {0, 1, -4}), Error);
  EXPECT_THROW(transpose(x, 0, 3), Error);
  EXPECT_THROW(transpose(x, -4, 0), Error);
  // Nine dimensions that no merging can reduce to eight.
  Tensor nine = Tensor::zeros({2, 2, 2, 2, 2, 2, 2, 2, 2});
  EXPECT_THROW(permute(nine, {8, 7, 6, 5, 4, 3, 2, 1, 0}), Error);
}

TEST(PermuteCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(12);
  // Tiled batched transposes (edges not multiples of 32), the index-mapping kernel, and the
  // small transposes that skip the tiles.
  Tensor a = random_tensor({3, 70, 45}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return transpose(in[0], -1, -2); }, {a}, kExact);
  expect_cuda_matches_cpu([](const auto& in) { return transpose(in[0], 0, 1); }, {a}, kExact);
  Tensor b = random_tensor({130, 33}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return transpose(in[0], 0, 1); }, {b}, kExact);
  Tensor c = random_tensor({4, 19, 7, 9}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return permute(in[0], {0, 2, 3, 1}); }, {c}, kExact);
  expect_cuda_matches_cpu([](const auto& in) { return permute(in[0], {0, 3, 1, 2}); }, {c}, kExact);
  Tensor d = random_tensor({2, 3, 4, 5, 6}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return permute(in[0], {4, 2, 0, 3, 1}); }, {d}, kExact);
  Tensor e = random_tensor({5, 3, 4}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return transpose(in[0], 1, 2); }, {e}, kExact);
  Tensor f = random_tensor({1, 6, 1}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return permute(in[0], {2, 1, 0}); }, {f}, kExact);
}

TEST(PermuteCuda, BFloat16AndIntegersCopiedExactly) {
  FFR_REQUIRE_CUDA();
  Rng rng(13);
  // ViT's head split: [B, N, 3, H, D] -> [3, B, H, N, D], in bfloat16 (2-byte tiles and words).
  Tensor qkv = random_tensor({2, 50, 3, 4, 16}, rng, DType::Float32).to(DType::BFloat16);
  expect_cuda_matches_cpu([](const auto& in) { return permute(in[0], {2, 0, 3, 1, 4}); }, {qkv}, kExact);
  Tensor h = random_tensor({2, 64, 48}, rng, DType::Float32).to(DType::BFloat16);
  expect_cuda_matches_cpu([](const auto& in) { return transpose(in[0], 1, 2); }, {h}, kExact);
  std::vector<int64_t> ids(40 * 37);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int64_t(rng.below(1000));
  Tensor labels = Tensor::from_vector(ids, {40, 37});
  EXPECT_EQ(transpose(labels.cuda(), 0, 1).to_vector<int64_t>(), transpose(labels, 0, 1).to_vector<int64_t>());
}

}  // namespace
}  // namespace ffr
