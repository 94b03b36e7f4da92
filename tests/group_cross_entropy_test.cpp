#include "kernels/group_cross_entropy.h"
#include "engine/error.h"
#include "engine/settings.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "tests/testing.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace ffr {
namespace {

using testing::expect_close;
using testing::random_tensor;

Tensor ids(const std::vector<int64_t>& v, Device device = Device::cpu()) {
  return Tensor::from_vector(v, {int64_t(v.size())}, DType::Int64, device);
}

std::vector<int64_t> random_ids(int64_t n, int64_t below, Rng& rng) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = int64_t(rng.below(uint64_t(below)));
  return v;
}

// The unfused composition: log-softmax from engine ops (exp, sum, log), the per-group weights
// (and GroupDRO's update) by hand in double, the gradient from autograd. Inputs are in [-1, 1]
// or so, so the max shift a real log-softmax needs does not matter here.
struct Expected {
  double loss = 0;
  std::vector<double> per_sample, group_sum, q;
  std::vector<int64_t> count;
  Tensor dlogits;  // float64
};

Expected compose(const Tensor& logits, const std::vector<int64_t>& labels, const std::vector<int64_t>& groups,
                 int64_t num_groups, std::vector<double> q, const GroupCrossEntropyConfig& config,
                 const std::vector<double>& train_sizes = {}) {
  const int64_t n = logits.size(0), c = logits.size(1);
  Tensor x = logits.to(DType::Float64).detach().clone().set_requires_grad(true);
  std::vector<double> onehot(size_t(n * c), 0.0);
  for (int64_t i = 0; i < n; ++i) onehot[size_t(i * c + labels[size_t(i)])] = 1.0;
  Tensor lse = log(sum(exp(x), {1}, true));
  Tensor per_sample = neg(sum(mul(sub(x, lse), Tensor::from_vector(onehot, {n, c})), {1}));

  Expected e;
  e.per_sample = per_sample.to_vector<double>();
  e.group_sum.assign(size_t(num_groups), 0.0);
  e.count.assign(size_t(num_groups), 0);
  for (int64_t i = 0; i < n; ++i) {
    e.group_sum[size_t(groups[size_t(i)])] += e.per_sample[size_t(i)];
    e.count[size_t(groups[size_t(i)])] += 1;
  }
  std::vector<double> w(size_t(num_groups), n > 0 ? 1.0 / double(n) : 0.0);
  if (config.mode != GroupLoss::Mean) {
    if (config.mode == GroupLoss::GroupDRO) {  // Sagawa et al.: exponentiated update, then renormalise
      double norm = 0;
      for (size_t k = 0; k < q.size(); ++k) {
        if (e.count[k] > 0) {
          double adjusted = e.group_sum[k] / double(e.count[k]);
          if (config.adjustment != 0) adjusted += config.adjustment / std::sqrt(train_sizes[k]);
          q[k] *= std::exp(config.step_size * adjusted);
        }
        norm += q[k];
      }
      for (double& v : q) v /= norm;
    }
    for (size_t k = 0; k < q.size(); ++k) w[k] = e.count[k] > 0 ? q[k] / double(e.count[k]) : 0.0;
  }
  e.q = q;
  std::vector<double> sample_w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) sample_w[size_t(i)] = w[size_t(groups[size_t(i)])];
  Tensor loss = sum(mul(per_sample, Tensor::from_vector(sample_w, {n})));
  e.loss = loss.item();
  loss.backward();
  e.dlogits = x.grad();
  return e;
}

// Compares every output of the fused op with the composition.
void expect_matches(const GroupCrossEntropyResult& r, const Tensor& q_after, const Expected& e, double rtol,
                    double atol) {
  const int64_t g = int64_t(e.group_sum.size());
  expect_close(r.loss.reshape({1}), Tensor::from_vector(std::vector<double>{e.loss}, {1}), rtol, atol, "loss");
  expect_close(r.per_sample_loss, Tensor::from_vector(e.per_sample, {int64_t(e.per_sample.size())}), rtol, atol,
               "per-sample loss");
  expect_close(r.group_loss_sum, Tensor::from_vector(e.group_sum, {g}), rtol, atol, "group loss sums");
  EXPECT_EQ(r.group_count.to_vector<int64_t>(), e.count);
  if (q_after.defined()) expect_close(q_after, Tensor::from_vector(e.q, {g}), rtol, atol, "group weights");
  expect_close(r.dlogits, e.dlogits, rtol, atol, "dlogits");
}

GroupCrossEntropyConfig config_for(GroupLoss mode, int64_t groups = 0) {
  GroupCrossEntropyConfig c;
  c.mode = mode;
  c.num_groups = groups;
  return c;
}

TEST(GroupCrossEntropy, MeanModeByHand) {
  // Row 0: logits (0, ln 3), label 1: softmax (1/4, 3/4), loss -ln(3/4).
  // Row 1: logits (0, 0), label 0: softmax (1/2, 1/2), loss ln 2.
  Tensor logits = Tensor::from_vector(std::vector<double>{0.0, std::log(3.0), 0.0, 0.0}, {2, 2});
  GroupCrossEntropyResult r = group_cross_entropy(logits, ids({1, 0}), Tensor(), Tensor(), {});
  EXPECT_NEAR(r.loss.item(), 0.5 * (-std::log(0.75) + std::log(2.0)), 1e-15);
  EXPECT_EQ(r.loss.shape(), Shape{});
  expect_close(r.dlogits, Tensor::from_vector(std::vector<double>{0.125, -0.125, -0.25, 0.25}, {2, 2}), 1e-14, 1e-15,
               "dlogits");
  EXPECT_EQ(r.group_count.to_vector<int64_t>(), (std::vector<int64_t>{2}));
}

TEST(GroupCrossEntropy, MeanModeEqualsComposition) {
  Rng rng(31);
  for (int64_t c : {1, 2, 10, 1000}) {
    SCOPED_TRACE("C = " + std::to_string(c));
    Tensor logits = random_tensor({9, c}, rng, DType::Float32, -3.0, 3.0);
    const std::vector<int64_t> labels = random_ids(9, c, rng), groups = random_ids(9, 3, rng);
    GroupCrossEntropyResult r = group_cross_entropy(logits, ids(labels), ids(groups), Tensor(), config_for(GroupLoss::Mean, 3));
    expect_matches(r, Tensor(), compose(logits, labels, groups, 3, {}, config_for(GroupLoss::Mean)), 1e-5, 1e-6);
  }
}

TEST(GroupCrossEntropy, MeanModeEqualsCrossEntropyMean) {
  Rng rng(35);
  Tensor logits = random_tensor({11, 6}, rng, DType::Float64, -3.0, 3.0);
  const Tensor labels = ids(random_ids(11, 6, rng));
  Tensor a = logits.clone().set_requires_grad(true), b = logits.clone().set_requires_grad(true);
  Tensor fused = group_weighted_cross_entropy(a, labels, Tensor(), Tensor(), {});
  Tensor plain = cross_entropy(b, labels, Reduction::Mean);
  EXPECT_NEAR(fused.item(), plain.item(), 1e-14);
  fused.backward();
  plain.backward();
  expect_close(a.grad(), b.grad(), 1e-12, 1e-15, "dlogits");
}

TEST(GroupCrossEntropy, WeightedAndGroupDROEqualComposition) {
  Rng rng(32);
  for (int64_t c : {2, 1000}) {
    for (GroupLoss mode : {GroupLoss::Weighted, GroupLoss::GroupDRO}) {
      SCOPED_TRACE("C = " + std::to_string(c) + (mode == GroupLoss::GroupDRO ? " GroupDRO" : " weighted"));
      // Groups 0, 1, 3 hold many samples, group 4 one sample, group 2 none.
      const int64_t n = 40;
      std::vector<int64_t> groups = random_ids(n, 2, rng);
      for (int64_t i = 0; i < 10; ++i) groups[size_t(i)] = 3;
      groups[20] = 4;
      const std::vector<int64_t> labels = random_ids(n, c, rng);
      Tensor logits = random_tensor({n, c}, rng, DType::Float32, -2.0, 2.0);
      const std::vector<double> q0 = {0.1, 0.2, 0.3, 0.15, 0.25};
      GroupCrossEntropyConfig config = config_for(mode);
      config.step_size = 0.5;  // large, so the update visibly moves q
      config.adjustment = mode == GroupLoss::GroupDRO ? 2.0 : 0.0;
      const std::vector<double> sizes = {1000, 50, 7, 300, 3};
      config.group_sizes = Tensor::from_vector(sizes, {5}, DType::Float32);
      Tensor q = Tensor::from_vector(q0, {5}, DType::Float32);
      GroupCrossEntropyResult r = group_cross_entropy(logits, ids(labels), ids(groups), q, config);
      const Expected e = compose(logits, labels, groups, 5, q0, config, sizes);
      expect_matches(r, q, e, 1e-5, 1e-6);
      EXPECT_EQ(r.group_count.to_vector<int64_t>()[2], 0);
      EXPECT_EQ(r.group_loss_sum.to_vector<double>()[2], 0.0);
      if (mode == GroupLoss::GroupDRO) {
        // The empty group's weight only shrinks by renormalisation; the weights still sum to 1.
        const std::vector<double> qa = q.to_vector<double>();
        EXPECT_NEAR(qa[0] + qa[1] + qa[2] + qa[3] + qa[4], 1.0, 1e-6);
        EXPECT_LT(qa[2], 0.3);
      }
    }
  }
}

TEST(GroupCrossEntropy, OneSampleGroupsAndGradScale) {
  // Every sample alone in its group: L_k = l_k, w_k = q_k.
  Tensor logits = Tensor::from_vector(std::vector<double>{0.5, -1.0, 2.0, 0.0, 0.0, 0.0}, {2, 3});
  Tensor q = Tensor::from_vector(std::vector<double>{0.25, 0.75}, {2});
  GroupCrossEntropyConfig config = config_for(GroupLoss::Weighted);
  config.grad_scale = 4.0;
  GroupCrossEntropyResult r = group_cross_entropy(logits, ids({2, 1}), ids({0, 1}), q, config);
  const std::vector<double> l = r.per_sample_loss.to_vector<double>();
  EXPECT_NEAR(l[1], std::log(3.0), 1e-15);
  EXPECT_NEAR(r.loss.item(), 0.25 * l[0] + 0.75 * l[1], 1e-15);
  const std::vector<double> d = r.dlogits.to_vector<double>();
  EXPECT_NEAR(d[4], 4.0 * 0.75 * (1.0 / 3.0 - 1.0), 1e-15);  // row 1, its label
  EXPECT_NEAR(d[3], 4.0 * 0.75 / 3.0, 1e-15);
  EXPECT_EQ(q.to_vector<double>(), (std::vector<double>{0.25, 0.75}));  // Weighted leaves q alone
}

TEST(GroupCrossEntropy, Gradients) {
  Rng rng(33);
  Tensor logits = random_tensor({7, 4}, rng);
  const Tensor labels = ids({0, 3, 1, 1, 2, 0, 3}), groups = ids({0, 1, 1, 2, 0, 0, 1});
  const Tensor q = Tensor::from_vector(std::vector<double>{0.5, 0.3, 0.2}, {3});
  testing::expect_gradients_match(
      [&](const auto& in) { return group_weighted_cross_entropy(in[0], labels, Tensor(), Tensor(), {}); }, {logits});
  testing::expect_gradients_match(
      [&](const auto& in) {
        return group_weighted_cross_entropy(in[0], labels, groups, q, config_for(GroupLoss::Weighted));
      },
      {logits});
}

TEST(GroupCrossEntropy, AutogradScalesByUpstream) {
  Rng rng(34);
  Tensor logits = random_tensor({5, 3}, rng, DType::Float32);
  const Tensor labels = ids({0, 1, 2, 0, 1}), groups = ids({0, 0, 1, 1, 1});
  Tensor q = Tensor::from_vector(std::vector<float>{0.5f, 0.5f}, {2});
  GroupCrossEntropyConfig config = config_for(GroupLoss::GroupDRO);
  Tensor q_fused = q.clone();
  const GroupCrossEntropyResult r = group_cross_entropy(logits, labels, groups, q_fused, config);
  Tensor x = logits.clone().set_requires_grad(true);
  Tensor q_autograd = q.clone();
  Tensor loss = group_weighted_cross_entropy(x, labels, groups, q_autograd, config);
  EXPECT_EQ(loss.item(), r.loss.item());
  EXPECT_EQ(q_autograd.to_vector<float>(), q_fused.to_vector<float>());
  loss.backward(Tensor::full({}, 2.5));
  expect_close(x.grad(), mul_scalar(r.dlogits, 2.5), 1e-6, 1e-7, "dlogits * upstream");
  config.grad_scale = 2.0;
  EXPECT_THROW(group_weighted_cross_entropy(x, labels, groups, q_autograd, config), Error);
}

TEST(GroupCrossEntropy, InvalidSamplesGiveNaNAndKeepWeights) {
  Tensor logits = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor q = Tensor::from_vector(std::vector<float>{0.5f, 0.5f}, {2});
  for (const auto& [labels, groups] : std::vector<std::pair<Tensor, Tensor>>{{ids({0, 2}), ids({0, 1})},
                                                                             {ids({0, 1}), ids({0, 2})}}) {
    GroupCrossEntropyResult r = group_cross_entropy(logits, labels, groups, q, config_for(GroupLoss::GroupDRO));
    EXPECT_TRUE(std::isnan(r.loss.item()));
    EXPECT_TRUE(std::isnan(r.per_sample_loss.to_vector<float>()[1]));
    EXPECT_FALSE(std::isnan(r.per_sample_loss.to_vector<float>()[0]));
    EXPECT_TRUE(std::isnan(r.dlogits.to_vector<float>()[0]));
    EXPECT_EQ(q.to_vector<float>(), (std::vector<float>{0.5f, 0.5f}));
  }
}

TEST(GroupCrossEntropy, NaNLogitGivesNaNLoss) {
  for (Device device : {Device::cpu(), Device::cuda(0)}) {
    if (device.is_cuda() && !cuda_available()) continue;  // the CUDA half needs a GPU
    SCOPED_TRACE(device.str());
    // Row 0's NaN is the only value its (CUDA) lane sees; row 1 is clean.
    Tensor logits = Tensor::from_vector(std::vector<float>{1.f, std::nanf(""), 0.f, 1.f}, {2, 2}, DType::Float32, device);
    const GroupCrossEntropyResult r = group_cross_entropy(logits, ids({0, 1}, device), Tensor(), Tensor(), {});
    const std::vector<float> l = r.per_sample_loss.to_vector<float>();
    EXPECT_TRUE(std::isnan(l[0]));
    EXPECT_NEAR(l[1], std::log(1.0 + std::exp(-1.0)), 1e-6);
    EXPECT_TRUE(std::isnan(r.loss.item()));
  }
}

TEST(GroupCrossEntropy, EmptyBatch) {
  Tensor logits = Tensor::zeros({0, 4});
  Tensor q = Tensor::from_vector(std::vector<float>{0.5f, 0.5f}, {2});
  GroupCrossEntropyResult r = group_cross_entropy(logits, ids({}), ids({}), q, config_for(GroupLoss::GroupDRO));
  EXPECT_EQ(r.loss.item(), 0.0);
  EXPECT_EQ(r.group_count.to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(q.to_vector<float>(), (std::vector<float>{0.5f, 0.5f}));
}

TEST(GroupCrossEntropy, RejectsBadInputs) {
  Tensor logits = Tensor::zeros({2, 3});
  Tensor q = Tensor::from_vector(std::vector<float>{0.5f, 0.5f}, {2});
  const GroupCrossEntropyConfig dro = config_for(GroupLoss::GroupDRO);
  EXPECT_THROW(group_cross_entropy(Tensor::zeros({6}), ids({0, 1}), ids({0, 1}), q, dro), Error);
  EXPECT_THROW(group_cross_entropy(logits, ids({0, 1, 2}), ids({0, 1}), q, dro), Error);
  EXPECT_THROW(group_cross_entropy(logits, Tensor::zeros({2}), ids({0, 1}), q, dro), Error);  // float labels
  EXPECT_THROW(group_cross_entropy(logits, ids({0, 1}), Tensor(), q, dro), Error);             // no groups
  EXPECT_THROW(group_cross_entropy(logits, ids({0, 1}), ids({0, 1}), Tensor(), dro), Error);   // no q
  EXPECT_THROW(group_cross_entropy(logits, ids({0, 1}), ids({0, 1}), q.to(DType::Float64), dro), Error);
  EXPECT_THROW(group_cross_entropy(logits, ids({0, 1}), ids({0, 1}), q, config_for(GroupLoss::GroupDRO, 3)), Error);
  EXPECT_THROW(group_cross_entropy(logits, ids({0, 1}), ids({0, 1}), Tensor(), config_for(GroupLoss::Mean)), Error);
  GroupCrossEntropyConfig adjusted = dro;
  adjusted.adjustment = 1.0;  // needs group_sizes
  EXPECT_THROW(group_cross_entropy(logits, ids({0, 1}), ids({0, 1}), q, adjusted), Error);
}

// ---- CUDA ----

struct Case {
  int64_t n, c, g;
  GroupLoss mode;
};

// dlogits are compared with rtol and an atol of `atol_fraction` of the largest |dlogit|: where
// softmax is near 1 at the label, p - 1 cancels and float32 exp's last bits dominate.
void expect_fused_cuda_matches_cpu(const Case& k, DType dtype, Rng& rng, double rtol, double atol_fraction) {
  SCOPED_TRACE("N " + std::to_string(k.n) + " C " + std::to_string(k.c) + " G " + std::to_string(k.g) + " mode " +
               std::to_string(int(k.mode)) + " " + dtype_name(dtype));
  // bfloat16 logits: the CPU reference runs in float32 on the same (rounded) values.
  Tensor logits = random_tensor({k.n, k.c}, rng, DType::Float32, -4.0, 4.0).to(dtype).to(DType::Float32);
  const std::vector<int64_t> labels = random_ids(k.n, k.c, rng), groups = random_ids(k.n, k.g, rng);
  std::vector<float> q0(static_cast<size_t>(k.g));
  for (auto& v : q0) v = float(rng.uniform(0.5, 1.5)) / float(k.g);
  GroupCrossEntropyConfig config = config_for(k.mode, k.g);
  config.adjustment = k.mode == GroupLoss::GroupDRO ? 1.0 : 0.0;
  std::vector<float> sizes(static_cast<size_t>(k.g));
  for (auto& v : sizes) v = float(1 + rng.below(1000));
  config.group_sizes = Tensor::from_vector(sizes, {k.g});
  Tensor q_cpu = Tensor::from_vector(q0, {k.g});
  const GroupCrossEntropyResult cpu = group_cross_entropy(logits, ids(labels), ids(groups), q_cpu, config);

  GroupCrossEntropyConfig gpu_config = config;
  gpu_config.group_sizes = config.group_sizes.cuda();
  Tensor q_gpu = Tensor::from_vector(q0, {k.g}).cuda();
  const GroupCrossEntropyResult gpu = group_cross_entropy(logits.to(dtype).cuda(), ids(labels, Device::cuda(0)),
                                                          ids(groups, Device::cuda(0)), q_gpu, gpu_config);
  ASSERT_TRUE(gpu.loss.is_cuda() && gpu.dlogits.is_cuda());
  EXPECT_EQ(gpu.dlogits.dtype(), dtype);
  expect_close(gpu.loss.cpu().reshape({1}), cpu.loss.reshape({1}), 1e-5, 1e-6, "loss");
  expect_close(gpu.per_sample_loss.cpu(), cpu.per_sample_loss, 1e-5, 1e-5, "per-sample loss");
  expect_close(gpu.group_loss_sum.cpu(), cpu.group_loss_sum, 1e-5, 1e-4, "group sums");
  EXPECT_EQ(gpu.group_count.to_vector<int64_t>(), cpu.group_count.to_vector<int64_t>());
  expect_close(q_gpu.cpu(), q_cpu, 1e-5, 1e-7, "group weights");
  double largest = 0;
  for (double d : cpu.dlogits.to_vector<double>()) largest = std::max(largest, std::abs(d));
  expect_close(gpu.dlogits.cpu().to(DType::Float32), cpu.dlogits, rtol, atol_fraction * largest, "dlogits");
}

TEST(GroupCrossEntropyCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(41);
  for (const Case& k : {Case{37, 2, 4, GroupLoss::Mean}, Case{37, 2, 4, GroupLoss::GroupDRO},
                        Case{128, 1000, 8, GroupLoss::Weighted}, Case{128, 1000, 8, GroupLoss::GroupDRO},
                        Case{8192, 1000, 8, GroupLoss::GroupDRO}, Case{8192, 2, 32, GroupLoss::GroupDRO},
                        Case{5, 3, 16, GroupLoss::GroupDRO}}) {
    expect_fused_cuda_matches_cpu(k, DType::Float32, rng, 1e-5, 1e-6);
  }
}

TEST(GroupCrossEntropyCuda, BFloat16Logits) {
  FFR_REQUIRE_CUDA();
  Rng rng(42);
  // dlogits are rounded to bfloat16 (8 bits of mantissa): ~1e-2 relative.
  expect_fused_cuda_matches_cpu({256, 1000, 8, GroupLoss::GroupDRO}, DType::BFloat16, rng, 1e-2, 1e-3);
  expect_fused_cuda_matches_cpu({256, 2, 4, GroupLoss::Mean}, DType::BFloat16, rng, 1e-2, 1e-3);
}

TEST(GroupCrossEntropyCuda, BitIdenticalRunToRun) {
  FFR_REQUIRE_CUDA();
  SettingsScope deterministic({false, true});
  Rng rng(43);
  Tensor logits = random_tensor({8192, 1000}, rng, DType::Float32, -4.0, 4.0).cuda();
  const Tensor labels = ids(random_ids(8192, 1000, rng), Device::cuda(0));
  const Tensor groups = ids(random_ids(8192, 8, rng), Device::cuda(0));
  std::vector<float> first_sums, first_q, first_d;
  for (int run = 0; run < 3; ++run) {
    Tensor q = Tensor::full({8}, 0.125, DType::Float32, Device::cuda(0));
    const GroupCrossEntropyResult r = group_cross_entropy(logits, labels, groups, q, config_for(GroupLoss::GroupDRO));
    const std::vector<float> sums = r.group_loss_sum.to_vector<float>(), qs = q.to_vector<float>();
    const std::vector<float> d = r.dlogits.to_vector<float>();
    if (run == 0) {
      first_sums = sums;
      first_q = qs;
      first_d = d;
      continue;
    }
    EXPECT_EQ(0, std::memcmp(sums.data(), first_sums.data(), sums.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(qs.data(), first_q.data(), qs.size() * sizeof(float)));
    EXPECT_EQ(d, first_d);
  }
}

TEST(GroupCrossEntropyCuda, AutogradMatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(44);
  Tensor logits = random_tensor({300, 10}, rng, DType::Float32, -3.0, 3.0);
  const std::vector<int64_t> labels = random_ids(300, 10, rng), groups = random_ids(300, 4, rng);
  const Tensor q = Tensor::from_vector(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}, {4});
  testing::expect_cuda_matches_cpu(
      [&](const auto& in) {
        const Device d = in[0].device();
        return group_weighted_cross_entropy(in[0], ids(labels, d), ids(groups, d), q.to(d),
                                            config_for(GroupLoss::Weighted));
      },
      {logits}, {1e-5, 1e-7, true});
}

TEST(GroupCrossEntropyCuda, MeanModeEqualsCrossEntropyMean) {
  FFR_REQUIRE_CUDA();
  Rng rng(45);
  Tensor logits = random_tensor({1000, 100}, rng, DType::Float32, -3.0, 3.0).cuda();
  const Tensor labels = ids(random_ids(1000, 100, rng), Device::cuda(0));
  Tensor a = logits.clone().set_requires_grad(true), b = logits.clone().set_requires_grad(true);
  Tensor fused = group_weighted_cross_entropy(a, labels, Tensor(), Tensor(), {});
  Tensor plain = cross_entropy(b, labels, Reduction::Mean);
  expect_close(fused.cpu().reshape({1}), plain.cpu().reshape({1}), 1e-5, 1e-7, "loss");
  fused.backward();
  plain.backward();
  expect_close(a.grad().cpu(), b.grad().cpu(), 1e-5, 1e-9, "dlogits");
}

TEST(GroupCrossEntropyCuda, InvalidSamplesGiveNaNAndKeepWeights) {
  FFR_REQUIRE_CUDA();
  Tensor logits = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2}, DType::Float32, Device::cuda(0));
  Tensor q = Tensor::from_vector(std::vector<float>{0.5f, 0.5f}, {2}, DType::Float32, Device::cuda(0));
  const GroupCrossEntropyResult r = group_cross_entropy(logits, ids({0, 7}, Device::cuda(0)),
                                                        ids({0, 1}, Device::cuda(0)), q,
                                                        config_for(GroupLoss::GroupDRO));
  EXPECT_TRUE(std::isnan(r.loss.item()));
  EXPECT_EQ(r.group_count.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(q.to_vector<float>(), (std::vector<float>{0.5f, 0.5f}));
}

}  // namespace
}  // namespace ffr
