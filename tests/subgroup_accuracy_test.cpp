#include "kernels/subgroup_accuracy.h"
#include "engine/error.h"
#include "tests/testing.h"

#include <algorithm>
#include <cmath>

namespace ffr {
namespace {

using testing::random_tensor;

Tensor ids(const std::vector<int64_t>& v, Device device = Device::cpu()) {
  return Tensor::from_vector(v, {int64_t(v.size())}, DType::Int64, device);
}

std::vector<int64_t> random_ids(int64_t n, int64_t below, Rng& rng) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = int64_t(rng.below(uint64_t(below)));
  return v;
}

TEST(SubgroupAccuracy, CountsAndMetricsByHand) {
  // Predictions (argmax): 1, 0, 2, 2, 1, 0.
  Tensor logits = Tensor::from_vector(std::vector<float>{0, 5, 1,  //
                                                         3, 1, 2,  //
                                                         0, 0, 9,  //
                                                         1, 2, 3,  //
                                                         -1, 4, -2,  //
                                                         7, 6, 5},
                                      {6, 3});
  const Tensor labels = ids({1, 0, 1, 2, 0, 0});
  const Tensor groups = ids({0, 0, 1, 1, 2, 2});
  SubgroupAccuracy acc(4);
  acc.update(logits, labels, groups);
  const SubgroupAccuracy::Summary s = acc.summary();
  EXPECT_EQ(s.counts.correct, (std::vector<int64_t>{2, 1, 1, 0}));
  EXPECT_EQ(s.counts.total, (std::vector<int64_t>{2, 2, 2, 0}));
  EXPECT_EQ(s.accuracy[0], 1.0);
  EXPECT_EQ(s.accuracy[1], 0.5);
  EXPECT_TRUE(std::isnan(s.accuracy[3]));
  EXPECT_EQ(s.worst_group_accuracy, 0.5);            // group 3 has no samples: left out
  EXPECT_DOUBLE_EQ(s.balanced_accuracy, 2.0 / 3.0);  // (1 + 0.5 + 0.5) / 3
  EXPECT_EQ(acc.worst_group_accuracy(), 0.5);
}

TEST(SubgroupAccuracy, TiesGoToTheLowestIndexAndNaNWins) {
  const float nan = std::nanf("");
  Tensor logits = Tensor::from_vector(std::vector<float>{2, 2, 2,  //
                                                         1, 3, 3,  //
                                                         1, nan, 5,  //
                                                         nan, 1, nan},
                                      {4, 3});
  SubgroupAccuracy acc(4);
  acc.update(logits, ids({0, 1, 1, 0}), ids({0, 1, 2, 3}));  // each label is the expected argmax
  EXPECT_EQ(acc.counts().correct, (std::vector<int64_t>{1, 1, 1, 1}));
}

TEST(SubgroupAccuracy, AccumulatesOverBatchesAndResets) {
  SubgroupAccuracy acc(2);
  Tensor logits = Tensor::from_vector(std::vector<float>{1, 0, 0, 1}, {2, 2});
  acc.update(logits, ids({0, 0}), ids({0, 1}));
  acc.update(logits, ids({0, 1}), ids({1, 1}));
  SubgroupAccuracy::Counts c = acc.counts();
  EXPECT_EQ(c.correct, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(c.total, (std::vector<int64_t>{1, 3}));
  acc.reset();
  EXPECT_EQ(acc.counts().total, (std::vector<int64_t>{0, 0}));
  EXPECT_TRUE(std::isnan(acc.worst_group_accuracy()));
  EXPECT_TRUE(std::isnan(acc.balanced_accuracy()));
}

TEST(SubgroupAccuracy, OnlyDeclaredGroupsCount) {
  // (y, b, g) groups, id = (y * 2 + b) * 2 + g for 2 classes, 2 biases, real/synthetic; group 5
  // (y=1, b=0, synthetic) is not declared.
  std::vector<bool> declared(8, true);
  declared[5] = false;
  SubgroupAccuracy acc(8, Device::cpu(), declared);
  Tensor logits = Tensor::from_vector(std::vector<float>{1, 0, 0, 1, 1, 0}, {3, 2});
  acc.update(logits, ids({0, 1, 1}), ids({0, 6, 5}));  // right, right, wrong (group 5)
  EXPECT_EQ(acc.worst_group_accuracy(), 1.0);
  EXPECT_EQ(acc.balanced_accuracy(), 1.0);
  EXPECT_EQ(acc.summary().accuracy[5], 0.0);  // still reported per group
  EXPECT_THROW(SubgroupAccuracy(8, Device::cpu(), std::vector<bool>(3, true)), Error);
}

TEST(SubgroupAccuracy, MatchesAHostLoop) {
  Rng rng(51);
  const int64_t n = 500, c = 7, g = 6;
  Tensor logits = random_tensor({n, c}, rng, DType::Float32);
  const std::vector<int64_t> labels = random_ids(n, c, rng), groups = random_ids(n, g, rng);
  SubgroupAccuracy acc(g);
  acc.update(logits, ids(labels), ids(groups));
  std::vector<int64_t> correct(g, 0), total(g, 0);
  const std::vector<float> x = logits.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    const auto row = x.begin() + i * c;
    const int64_t pred = std::max_element(row, row + c) - row;  // first maximum
    correct[size_t(groups[size_t(i)])] += pred == labels[size_t(i)];
    total[size_t(groups[size_t(i)])] += 1;
  }
  EXPECT_EQ(acc.counts().correct, correct);
  EXPECT_EQ(acc.counts().total, total);
}

TEST(SubgroupAccuracy, InvalidIdsAreReportedWhenCountsAreRead) {
  SubgroupAccuracy acc(2);
  Tensor logits = Tensor::zeros({2, 3});
  acc.update(logits, ids({0, 1}), ids({0, 2}));  // group 2 does not exist
  EXPECT_THROW(acc.counts(), InputError);
  acc.reset();
  acc.update(logits, ids({3, 1}), ids({0, 1}));  // label 3 with 3 classes
  EXPECT_THROW(acc.summary(), InputError);
}

TEST(SubgroupAccuracy, RejectsBadInputs) {
  SubgroupAccuracy acc(2);
  EXPECT_THROW(acc.update(Tensor::zeros({6}), ids({0}), ids({0})), Error);
  EXPECT_THROW(acc.update(Tensor::zeros({2, 3}), ids({0}), ids({0, 1})), Error);
  EXPECT_THROW(acc.update(Tensor::zeros({2, 3}), ids({0, 1}), Tensor::zeros({2})), Error);
  EXPECT_THROW(acc.update(Tensor::zeros({2, 0}), ids({0, 1}), ids({0, 1})), Error);
  EXPECT_THROW(SubgroupAccuracy(0), Error);
}

// ---- CUDA ----

void expect_cuda_counts_match_cpu(const Tensor& logits_cpu, DType dtype, int64_t g, Rng& rng) {
  const int64_t n = logits_cpu.size(0), c = logits_cpu.size(1);
  SCOPED_TRACE("N " + std::to_string(n) + " C " + std::to_string(c) + " " + dtype_name(dtype));
  // bfloat16 logits: the CPU counts run on the same rounded values in float32.
  const Tensor rounded = logits_cpu.to(dtype).to(DType::Float32);
  const std::vector<int64_t> labels = random_ids(n, c, rng), groups = random_ids(n, g, rng);
  SubgroupAccuracy cpu(g), gpu(g, Device::cuda(0));
  for (int batch = 0; batch < 2; ++batch) {  // two batches: counts accumulate on the device
    cpu.update(rounded, ids(labels), ids(groups));
    gpu.update(rounded.to(dtype).cuda(), ids(labels, Device::cuda(0)), ids(groups, Device::cuda(0)));
  }
  const SubgroupAccuracy::Summary a = gpu.summary(), b = cpu.summary();
  EXPECT_EQ(a.counts.correct, b.counts.correct);
  EXPECT_EQ(a.counts.total, b.counts.total);
  EXPECT_EQ(a.worst_group_accuracy, b.worst_group_accuracy);
  EXPECT_EQ(a.balanced_accuracy, b.balanced_accuracy);
}

TEST(SubgroupAccuracyCuda, CountsMatchCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(52);
  expect_cuda_counts_match_cpu(random_tensor({8192, 1000}, rng, DType::Float32), DType::Float32, 16, rng);
  expect_cuda_counts_match_cpu(random_tensor({8192, 2}, rng, DType::Float32), DType::Float32, 8, rng);
  expect_cuda_counts_match_cpu(random_tensor({37, 5}, rng, DType::Float32), DType::Float32, 3, rng);
  expect_cuda_counts_match_cpu(random_tensor({1000, 100}, rng, DType::Float32), DType::BFloat16, 8, rng);
}

TEST(SubgroupAccuracyCuda, TiesMatchCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(53);
  // Logits from {0, 1, 2}: almost every row has a tie for its maximum, across lanes of the warp.
  std::vector<float> x(4096 * 100);
  for (auto& v : x) v = float(rng.below(3));
  expect_cuda_counts_match_cpu(Tensor::from_vector(x, {4096, 100}), DType::Float32, 4, rng);
}

TEST(SubgroupAccuracyCuda, InvalidIdsAreReported) {
  FFR_REQUIRE_CUDA();
  SubgroupAccuracy acc(2, Device::cuda(0));
  acc.update(Tensor::zeros({2, 3}, DType::Float32, Device::cuda(0)), ids({0, 1}, Device::cuda(0)),
             ids({0, -1}, Device::cuda(0)));
  EXPECT_THROW(acc.counts(), InputError);
  EXPECT_THROW(acc.update(Tensor::zeros({2, 3}), ids({0, 1}), ids({0, 1})), Error);  // CPU logits, CUDA counts
}

}  // namespace
}  // namespace ffr
