#include "kernels/gather.h"
#include "engine/error.h"
#include "engine/settings.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

// Random indices in [0, bound), repeats included (they exercise the scatter-add).
Tensor random_index(const Shape& shape, int64_t bound, Rng& rng, DType dtype = DType::Int64) {
  std::vector<int64_t> values(size_t(shape_numel(shape)));
  for (int64_t& v : values) v = int64_t(rng.below(uint64_t(bound)));
  return Tensor::from_vector(values, shape, dtype);
}

TEST(Gather, Gradients) {
  Rng rng(41);
  Tensor x = random_tensor({3, 4, 5}, rng);
  Tensor along1 = random_index({3, 6, 5}, 4, rng);
  expect_gradients_match([&](const auto& in) { return gather(in[0], 1, along1); }, {x});
  Tensor along0 = random_index({2, 3, 2}, 3, rng, DType::Int32);  // smaller than x outside dim
  expect_gradients_match([&](const auto& in) { return gather(in[0], 0, along0); }, {x});
  Tensor last = random_index({3, 4, 1}, 5, rng);
  expect_gradients_match([&](const auto& in) { return gather(in[0], -1, last); }, {x});
}

TEST(Gather, IndexSelectGradients) {
  Rng rng(42);
  Tensor x = random_tensor({5, 3}, rng);
  Tensor rows = Tensor::from_vector(std::vector<int64_t>{4, 0, 4, 2}, {4});
  expect_gradients_match([&](const auto& in) { return index_select(in[0], 0, rows); }, {x});
  Tensor y = random_tensor({2, 5, 3}, rng);
  Tensor mid = Tensor::from_vector(std::vector<int64_t>{1, 1, 3}, {3}, DType::Int32);
  expect_gradients_match([&](const auto& in) { return index_select(in[0], 1, mid); }, {y});
  Tensor last = Tensor::from_vector(std::vector<int64_t>{2, 0, 2, 1}, {4});
  expect_gradients_match([&](const auto& in) { return index_select(in[0], -1, last); }, {y});
}

TEST(Gather, ValuesMatchHandComputation) {
  // torch.gather's documented example.
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor index = Tensor::from_vector(std::vector<int64_t>{0, 0, 1, 0}, {2, 2});
  EXPECT_EQ(gather(x, 1, index).to_vector<float>(), (std::vector<float>{1, 1, 4, 3}));
  EXPECT_EQ(gather(x, 0, index).to_vector<float>(), (std::vector<float>{1, 2, 3, 2}));
  // Picking each row's label logit, the cross-entropy pattern.
  Tensor logits = Tensor::from_vector(std::vector<float>{0.1f, 0.2f, 0.3f, 1.1f, 1.2f, 1.3f}, {2, 3});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2, 1}, DType::Int32);
  EXPECT_EQ(gather(logits, 1, labels).to_vector<float>(), (std::vector<float>{0.3f, 1.1f}));
  // index_select on rows and on integer data (a batch subset of labels).
  Tensor picked = index_select(logits, 0, Tensor::from_vector(std::vector<int64_t>{1, 1, 0}, {3}));
  EXPECT_EQ(picked.shape(), (Shape{3, 3}));
  EXPECT_EQ(picked.to_vector<float>(), (std::vector<float>{1.1f, 1.2f, 1.3f, 1.1f, 1.2f, 1.3f, 0.1f, 0.2f, 0.3f}));
  Tensor ys = Tensor::from_vector(std::vector<int64_t>{7, 8, 9}, {3});
  EXPECT_EQ(index_select(ys, 0, Tensor::from_vector(std::vector<int64_t>{2, 0}, {2})).to_vector<int64_t>(),
            (std::vector<int64_t>{9, 7}));
}

TEST(Gather, BackwardAddsRepeatedIndices) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).set_requires_grad(true);
  Tensor index = Tensor::from_vector(std::vector<int64_t>{2, 0, 2, 2}, {4});
  gather(x, 0, index).backward(Tensor::from_vector(std::vector<double>{1, 10, 100, 1000}, {4}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{10, 0, 1101}));
  Tensor m = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}).set_requires_grad(true);
  index_select(m, 0, Tensor::from_vector(std::vector<int64_t>{1, 1}, {2}))
      .backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}));
  EXPECT_EQ(m.grad().to_vector<double>(), (std::vector<double>{0, 0, 4, 6}));
}

TEST(Gather, RejectsBadIndices) {
  Tensor x = Tensor::zeros({2, 3});
  EXPECT_THROW(gather(x, 1, Tensor::from_vector(std::vector<int64_t>{0, 3}, {2, 1})), Error);   // out of range
  EXPECT_THROW(gather(x, 1, Tensor::from_vector(std::vector<int64_t>{0, -1}, {2, 1})), Error);  // negative
  EXPECT_THROW(gather(x, 1, Tensor::zeros({2, 1})), Error);                                      // float index
  EXPECT_THROW(gather(x, 1, Tensor::from_vector(std::vector<int64_t>{0, 1}, {2})), Error);       // ndim
  EXPECT_THROW(gather(x, 1, Tensor::zeros({3, 1}, DType::Int64)), Error);  // larger than x outside dim
  EXPECT_THROW(gather(x, 2, Tensor::zeros({2, 1}, DType::Int64)), Error);
  EXPECT_THROW(index_select(x, 0, Tensor::from_vector(std::vector<int64_t>{2}, {1})), Error);
  EXPECT_THROW(index_select(x, 0, Tensor::zeros({1, 1}, DType::Int64)), Error);
  EXPECT_THROW(index_select(x, -3, Tensor::zeros({1}, DType::Int64)), Error);
}

TEST(GatherCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(43);
  // Float32 sums in a different order (atomics) differ in the last bits only.
  const testing::CompareOptions tol{1e-5, 1e-6, true};
  Tensor x = random_tensor({16, 40, 9}, rng, DType::Float32);
  Tensor few = random_index({16, 3, 9}, 40, rng);  // scan backward
  expect_cuda_matches_cpu([&](const auto& in) { return gather(in[0], 1, few.to(in[0].device())); }, {x}, tol);
  Tensor many = random_index({16, 100, 9}, 40, rng, DType::Int32);  // atomic backward
  expect_cuda_matches_cpu([&](const auto& in) { return gather(in[0], 1, many.to(in[0].device())); }, {x}, tol);
  Tensor rows = random_index({7}, 16, rng);
  expect_cuda_matches_cpu([&](const auto& in) { return index_select(in[0], 0, rows.to(in[0].device())); }, {x}, tol);
  Tensor lots = random_index({300}, 40, rng, DType::Int32);
  expect_cuda_matches_cpu([&](const auto& in) { return index_select(in[0], 1, lots.to(in[0].device())); }, {x}, tol);
}

TEST(GatherCuda, DeterministicSettingGivesBitIdenticalGradients) {
  FFR_REQUIRE_CUDA();
  Rng rng(44);
  SettingsScope scope(Settings{false, true});
  Tensor x = random_tensor({8, 50}, rng, DType::Float32);
  Tensor index = random_index({8, 500}, 50, rng).cuda();
  Tensor rows = random_index({400}, 8, rng).cuda();
  auto grad_of = [&](bool use_gather) {
    Tensor leaf = x.cuda().set_requires_grad(true);
    Tensor y = use_gather ? gather(leaf, 1, index) : index_select(leaf, 0, rows);
    y.backward(Tensor::ones(y.shape(), DType::Float32, y.device()));
    return leaf.grad().to_vector<float>();
  };
  for (bool use_gather : {true, false}) {
    const std::vector<float> first = grad_of(use_gather);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(grad_of(use_gather), first);
  }
  // And equal to the CPU reference's order of summation.
  Tensor leaf = x.clone().set_requires_grad(true);
  Tensor y = gather(leaf, 1, index.cpu());
  y.backward(Tensor::ones(y.shape()));
  EXPECT_EQ(grad_of(true), leaf.grad().to_vector<float>());
}

TEST(GatherCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(45);
  Tensor x = random_tensor({32, 64}, rng, DType::Float32);
  Tensor index = random_index({32, 200}, 64, rng);
  Tensor gy = random_tensor({32, 200}, rng, DType::Float32);
  Tensor leaf = x.cuda().to(DType::BFloat16).set_requires_grad(true);
  Tensor y = gather(leaf, 1, index.cuda());
  y.backward(gy.cuda().to(DType::BFloat16));
  Tensor ref_leaf = x.to(DType::BFloat16).to(DType::Float32).set_requires_grad(true);
  Tensor ref = gather(ref_leaf, 1, index);
  ref.backward(gy.to(DType::BFloat16).to(DType::Float32));
  testing::expect_close(y.to(DType::Float32).cpu(), ref, 0.0, 1e-30, "bf16 gather (a copy)");
  // The scatter-add runs in float32 and rounds once to bf16 (relative error 2^-8).
  testing::expect_close(leaf.grad().to(DType::Float32).cpu(), ref_leaf.grad(), 1e-2, 1e-2, "bf16 gather grad");
}

TEST(GatherCuda, OutOfRangeIndicesReadZeroAndSendNoGradient) {
  FFR_REQUIRE_CUDA();
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).cuda().set_requires_grad(true);
  Tensor index = Tensor::from_vector(std::vector<int64_t>{1, 7, -2, 0}, {4}).cuda();
  Tensor y = gather(x, 0, index);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2, 0, 0, 1}));
  y.backward(Tensor::ones({4}, DType::Float32, y.device()));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 1, 0}));
  EXPECT_EQ(index_select(x.detach(), 0, index).to_vector<float>(), (std::vector<float>{2, 0, 0, 1}));
}

}  // namespace
}  // namespace ffr
