#include "kernels/cross_entropy.h"
#include "engine/error.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

using testing::expect_close;
using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

const Reduction kReductions[] = {Reduction::None, Reduction::Mean, Reduction::Sum};

std::string reduction_name(Reduction r) {
  return r == Reduction::None ? "none" : r == Reduction::Mean ? "mean" : "sum";
}

Tensor random_labels(int64_t n, int64_t c, Rng& rng, DType dtype = DType::Int64) {
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (auto& label : labels) label = int64_t(rng.below(uint64_t(c)));
  return Tensor::from_vector(labels, {n}, dtype);
}

TEST(CrossEntropy, Gradients) {
  Rng rng(41);
  for (int64_t c : {2, 7}) {
    for (DType label_dtype : {DType::Int64, DType::Int32}) {
      const int64_t n = 2 + int64_t(rng.below(5));
      Tensor logits = random_tensor({n, c}, rng, DType::Float64, -2.0, 2.0);
      Tensor labels = random_labels(n, c, rng, label_dtype);
      for (Reduction r : kReductions) {
        SCOPED_TRACE("c=" + std::to_string(c) + " n=" + std::to_string(n) + " " + reduction_name(r));
        expect_gradients_match([r](const auto& in) { return cross_entropy(in[0], in[1], r); }, {logits, labels});
      }
    }
  }
}

TEST(CrossEntropy, ValuesMatchHandComputation) {
  // Both rows are [1,2,3]: logsumexp = 3.40760596444438, so label 2 costs 0.40760596 and
  // label 0 costs 2.40760596.
  Tensor logits = Tensor::from_vector(std::vector<double>{1, 2, 3, 1, 2, 3}, {2, 3});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2});
  const double l0 = 0.4076059644443806, l1 = 2.4076059644443806;
  Tensor none = cross_entropy(logits, labels, Reduction::None);
  EXPECT_EQ(none.shape(), (Shape{2}));
  expect_close(none, Tensor::from_vector(std::vector<double>{l0, l1}, {2}), 1e-12, 0, "none");
  Tensor mean = cross_entropy(logits, labels);
  EXPECT_EQ(mean.numel(), 1);
  EXPECT_NEAR(mean.item(), (l0 + l1) / 2, 1e-12);
  EXPECT_NEAR(cross_entropy(logits, labels, Reduction::Sum).item(), l0 + l1, 1e-12);
  // Huge logits stay finite (max subtraction): [1000, 0] with label 0 costs log(1 + e^-1000) = 0.
  Tensor big = Tensor::from_vector(std::vector<float>{1000, 0}, {1, 2});
  EXPECT_EQ(cross_entropy(big, Tensor::from_vector(std::vector<int64_t>{0}, {1})).item(), 0.0);
  EXPECT_NEAR(cross_entropy(big, Tensor::from_vector(std::vector<int64_t>{1}, {1})).item(), 1000.0, 1e-3);
}

TEST(CrossEntropy, HandGradient) {
  // Mean over N = 2: dlogits = (softmax - onehot) / 2.
  Tensor logits = Tensor::from_vector(std::vector<double>{1, 2, 3, 1, 2, 3}, {2, 3}).set_requires_grad(true);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2}, DType::Int32);
  cross_entropy(logits, labels).backward();
  const double p0 = 0.09003057317038046, p1 = 0.24472847105479764, p2 = 0.6652409557748219;
  expect_close(logits.grad(),
               Tensor::from_vector(std::vector<double>{p0 / 2, p1 / 2, (p2 - 1) / 2, (p0 - 1) / 2, p1 / 2, p2 / 2}, {2, 3}),
               1e-12, 1e-15, "dlogits");
}

TEST(CrossEntropy, BadInputsAreErrors) {
  Tensor logits = Tensor::ones({3, 4});
  EXPECT_THROW(cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 4, 1}, {3})), Error);
  EXPECT_THROW(cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, -1, 1}, {3}, DType::Int32)), Error);
  EXPECT_THROW(cross_entropy(logits, Tensor::zeros({4}, DType::Int64)), Error);     // N mismatch
  EXPECT_THROW(cross_entropy(logits, Tensor::zeros({3, 1}, DType::Int64)), Error);  // labels not 1-D
  EXPECT_THROW(cross_entropy(logits, Tensor::zeros({3})), Error);                   // float labels
  EXPECT_THROW(cross_entropy(Tensor::ones({4}), Tensor::zeros({4}, DType::Int64)), Error);
  EXPECT_THROW(cross_entropy(Tensor::ones({3, 4, 2}), Tensor::zeros({3}, DType::Int64)), Error);
  EXPECT_THROW(cross_entropy(Tensor::ones({3, 0}), Tensor::zeros({3}, DType::Int64)), Error);
  try {
    cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 1, 9}, {3}));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("label 9 of sample 2"), std::string::npos) << what;
    EXPECT_NE(what.find("cross_entropy("), std::string::npos) << what;
  }
}

// Per-sample terms are compared at float32 precision; with a mean, gradients are ~p / N, so the
// absolute floor shrinks by N too.
void expect_cuda_cross_entropy_matches_cpu(int64_t n, int64_t c, uint64_t seed) {
  Rng rng(seed);
  Tensor logits = random_tensor({n, c}, rng, DType::Float32, -4.0, 4.0);
  for (DType label_dtype : {DType::Int64, DType::Int32}) {
    Tensor labels = random_labels(n, c, rng, label_dtype);
    for (Reduction r : kReductions) {
      SCOPED_TRACE("n=" + std::to_string(n) + " c=" + std::to_string(c) + " " + reduction_name(r));
      const testing::CompareOptions tol{1e-5, r == Reduction::Mean ? 1e-6 / double(n) : 1e-6, true};
      expect_cuda_matches_cpu([r](const auto& in) { return cross_entropy(in[0], in[1], r); }, {logits, labels}, tol);
    }
  }
}

TEST(CrossEntropyCuda, MatchesCpuTwoClasses) {
  FFR_REQUIRE_CUDA();
  expect_cuda_cross_entropy_matches_cpu(4096, 2, 51);
  expect_cuda_cross_entropy_matches_cpu(3, 2, 52);
}

TEST(CrossEntropyCuda, MatchesCpuThousandClasses) {
  FFR_REQUIRE_CUDA();
  expect_cuda_cross_entropy_matches_cpu(4096, 1000, 53);
}

TEST(CrossEntropyCuda, MatchesCpuManyClasses) {  // a block per row past 1024 classes
  FFR_REQUIRE_CUDA();
  expect_cuda_cross_entropy_matches_cpu(64, 5000, 54);
}

TEST(CrossEntropyCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(55);
  const Tensor logits = random_tensor({256, 10}, rng, DType::Float32, -4.0, 4.0).to(DType::BFloat16);
  const Tensor labels = random_labels(256, 10, rng);
  Tensor x_gpu = logits.cuda().set_requires_grad(true);
  Tensor loss_gpu = cross_entropy(x_gpu, labels.cuda(), Reduction::Sum);
  ASSERT_EQ(loss_gpu.dtype(), DType::BFloat16);
  loss_gpu.backward();
  Tensor x_ref = logits.to(DType::Float32).set_requires_grad(true);
  Tensor loss_ref = cross_entropy(x_ref, labels, Reduction::Sum);
  loss_ref.backward();
  expect_close(loss_gpu.cpu().to(DType::Float32), loss_ref, 1e-2, 1e-2, "bf16 loss");
  expect_close(x_gpu.grad().cpu().to(DType::Float32), x_ref.grad(), 1e-2, 1e-3, "bf16 dlogits");
}

// The kernel cannot throw without a host sync: a bad label gives that sample NaN (loss and
// gradient row) and leaves the other samples untouched.
TEST(CrossEntropyCuda, OutOfRangeLabelGivesNaNForThatSample) {
  FFR_REQUIRE_CUDA();
  Rng rng(56);
  Tensor logits = random_tensor({4, 5}, rng, DType::Float32);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 5, -3, 4}, {4});
  Tensor x = logits.cuda().set_requires_grad(true);
  Tensor losses = cross_entropy(x, labels.cuda(), Reduction::None);
  losses.backward(Tensor::ones({4}, DType::Float32, Device::cuda()));
  const std::vector<float> l = losses.cpu().to_vector<float>();
  EXPECT_TRUE(std::isfinite(l[0]) && std::isfinite(l[3]));
  EXPECT_TRUE(std::isnan(l[1]) && std::isnan(l[2]));
  const std::vector<float> g = x.grad().cpu().to_vector<float>();
  for (int64_t j = 0; j < 5; ++j) {
    EXPECT_TRUE(std::isfinite(g[size_t(j)]) && std::isfinite(g[size_t(15 + j)]));
    EXPECT_TRUE(std::isnan(g[size_t(5 + j)]) && std::isnan(g[size_t(10 + j)]));
  }
  EXPECT_TRUE(std::isnan(cross_entropy(logits.cuda(), labels.cuda()).item()));
}

TEST(CrossEntropyCuda, BadInputsAreErrors) {
  FFR_REQUIRE_CUDA();
  Tensor logits = Tensor::ones({3, 4}, DType::Float32, Device::cuda());
  EXPECT_THROW(cross_entropy(logits, Tensor::zeros({3}, DType::Int64)), Error);  // labels on the CPU
  EXPECT_THROW(cross_entropy(logits, Tensor::zeros({2}, DType::Int64, Device::cuda())), Error);
}

}  // namespace
}  // namespace ffr
