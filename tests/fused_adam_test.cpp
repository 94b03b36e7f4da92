#include "kernels/fused_adam.h"
#include "engine/error.h"
#include "tests/testing.h"

#include <cmath>
#include <cstring>

namespace ffr {
namespace {

using testing::expect_close;
using testing::random_tensor;

// PyTorch's Adam/AdamW update (torch/optim/adam.py, single-tensor path) in double.
void reference_adam_step(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m,
                         std::vector<double>& v, const AdamHyperParameters& h, int64_t t) {
  const double bc1 = 1.0 - std::pow(h.beta1, double(t));
  const double bc2 = 1.0 - std::pow(h.beta2, double(t));
  for (size_t i = 0; i < p.size(); ++i) {
    double grad = g[i];
    if (h.decoupled_weight_decay) {
      p[i] *= 1.0 - h.lr * h.weight_decay;
    } else {
      grad += h.weight_decay * p[i];
    }
    m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * grad;
    v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * grad * grad;
    p[i] -= (h.lr / bc1) * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + h.eps);
  }
}

AdamTensors make_state(const Tensor& param, const Tensor& grad) {
  return {param, grad, Tensor::zeros(param.shape(), param.dtype(), param.device()),
          Tensor::zeros(param.shape(), param.dtype(), param.device())};
}

TEST(FusedAdam, FirstStepByHand) {
  // t = 1, m = v = 0: m = 0.1 g, v = 0.001 g^2, so the step is lr * g / (|g| + eps') = lr * sign(g)
  // up to eps. With coupled decay g = 0.5 + 0.1 * 2 = 0.7.
  Tensor p = Tensor::from_vector(std::vector<double>{2.0}, {1});
  Tensor g = Tensor::from_vector(std::vector<double>{0.5}, {1});
  AdamHyperParameters h;
  h.lr = 0.01;
  h.weight_decay = 0.1;
  h.eps = 0.0;
  FusedAdamPlan plan({make_state(p, g)});
  fused_adam_step(plan, h, 1);
  EXPECT_NEAR(p.to_vector<double>()[0], 2.0 - 0.01, 1e-15);
}

TEST(FusedAdam, StateAfterOneStepByHand) {
  Tensor p = Tensor::from_vector(std::vector<double>{1.0, -3.0}, {2});
  Tensor g = Tensor::from_vector(std::vector<double>{0.2, -0.4}, {2});
  AdamTensors t = make_state(p, g);
  AdamHyperParameters h;
  h.lr = 0.1;
  h.weight_decay = 0.5;
  h.decoupled_weight_decay = true;  // AdamW: p *= 1 - 0.05 first, gradient untouched
  fused_adam_step(FusedAdamPlan({t}), h, 1);
  const std::vector<double> m = t.exp_avg.to_vector<double>(), v = t.exp_avg_sq.to_vector<double>();
  EXPECT_NEAR(m[0], 0.02, 1e-15);
  EXPECT_NEAR(m[1], -0.04, 1e-15);
  EXPECT_NEAR(v[0], 0.001 * 0.04, 1e-15);
  EXPECT_NEAR(v[1], 0.001 * 0.16, 1e-15);
  const std::vector<double> pv = p.to_vector<double>();
  EXPECT_NEAR(pv[0], 0.95 - 0.1 * 0.2 / (0.2 + 1e-8), 1e-12);
  EXPECT_NEAR(pv[1], -2.85 + 0.1 * 0.4 / (0.4 + 1e-8), 1e-12);
}

TEST(FusedAdam, OnePlanUpdatesEveryTensorLikeTheReference) {
  Rng rng(11);
  const std::vector<Shape> shapes = {{3, 4}, {7}, {1}, {2, 2, 5}};
  std::vector<AdamTensors> tensors;
  std::vector<std::vector<double>> p, g, m, v;
  for (const Shape& s : shapes) {
    Tensor param = random_tensor(s, rng), grad = random_tensor(s, rng);
    tensors.push_back(make_state(param, grad));
    p.push_back(param.to_vector<double>());
    g.push_back(grad.to_vector<double>());
    m.emplace_back(p.back().size(), 0.0);
    v.emplace_back(p.back().size(), 0.0);
  }
  FusedAdamPlan plan(tensors);
  EXPECT_EQ(plan.num_tensors(), 4);
  EXPECT_EQ(plan.numel(), 12 + 7 + 1 + 20);
  AdamHyperParameters h;
  h.lr = 0.05;
  h.weight_decay = 0.01;
  for (int64_t t = 1; t <= 5; ++t) {
    fused_adam_step(plan, h, t);
    for (size_t k = 0; k < shapes.size(); ++k) reference_adam_step(p[k], g[k], m[k], v[k], h, t);
  }
  for (size_t k = 0; k < shapes.size(); ++k) {
    expect_close(tensors[k].param, Tensor::from_vector(p[k], shapes[k]), 1e-13, 1e-15, "param " + std::to_string(k));
    expect_close(tensors[k].exp_avg, Tensor::from_vector(m[k], shapes[k]), 1e-13, 1e-15, "exp_avg");
    expect_close(tensors[k].exp_avg_sq, Tensor::from_vector(v[k], shapes[k]), 1e-13, 1e-15, "exp_avg_sq");
  }
}

TEST(FusedAdam, PlanIsReusedOnlyForTheSameBuffers) {
  Rng rng(12);
  Tensor p = random_tensor({5}, rng, DType::Float32), g = random_tensor({5}, rng, DType::Float32);
  std::vector<AdamTensors> tensors = {make_state(p, g)};
  FusedAdamPlan plan(tensors);
  EXPECT_TRUE(plan.matches(tensors));
  std::vector<AdamTensors> other = {make_state(p, g.clone())};
  EXPECT_FALSE(plan.matches(other));
  EXPECT_FALSE(plan.matches({}));
}

TEST(FusedAdam, RejectsMismatchedTensors) {
  Rng rng(13);
  Tensor p = random_tensor({4}, rng, DType::Float32);
  EXPECT_THROW(FusedAdamPlan({make_state(p, random_tensor({5}, rng, DType::Float32))}), Error);
  EXPECT_THROW(FusedAdamPlan({make_state(p, random_tensor({4}, rng, DType::Float64))}), Error);
  EXPECT_THROW(FusedAdamPlan({make_state(p, Tensor())}), Error);
  Tensor q = random_tensor({4}, rng, DType::Float64);
  EXPECT_THROW(FusedAdamPlan({make_state(p, p.clone()), make_state(q, q.clone())}), Error);  // mixed dtypes
  FusedAdamPlan plan({make_state(p, p.clone())});
  EXPECT_THROW(fused_adam_step(plan, AdamHyperParameters{}, 0), Error);  // t counts from 1
}

// Bitwise snapshot of a plan's tensors.
std::vector<std::vector<unsigned char>> bytes_of(const std::vector<AdamTensors>& tensors) {
  std::vector<std::vector<unsigned char>> out;
  for (const AdamTensors& t : tensors) {
    for (const Tensor* x : {&t.param, &t.exp_avg, &t.exp_avg_sq}) {
      const Tensor host = x->cpu();
      const unsigned char* b = static_cast<const unsigned char*>(host.raw_data());
      out.emplace_back(b, b + host.nbytes());
    }
  }
  return out;
}

// Two identical parameter sets with non-zero moments (a first step has run on both).
std::pair<std::vector<AdamTensors>, std::vector<AdamTensors>> twin_states(DType dtype, Device device, Rng& rng) {
  std::vector<AdamTensors> a, b;
  for (const Shape& s : std::vector<Shape>{{3, 4}, {kAdamChunkElements + 5}, {1}}) {
    Tensor p = random_tensor(s, rng, dtype).to(device), g = random_tensor(s, rng, dtype).to(device);
    a.push_back(make_state(p, g));
    b.push_back(make_state(p.clone(), g.clone()));
  }
  FusedAdamPlan pa(a), pb(b);
  fused_adam_step(pa, AdamHyperParameters{}, 1);
  fused_adam_step(pb, AdamHyperParameters{}, 1);
  return {a, b};
}

void expect_guard_freezes_and_clean_status_changes_nothing(DType dtype, Device device) {
  Rng rng(15);
  auto [guarded, plain] = twin_states(dtype, device, rng);
  AdamHyperParameters h;
  h.lr = 0.05;
  h.weight_decay = 0.01;
  // A set status: nothing moves, not a bit.
  Tensor status = make_nonfinite_status(device);
  record_first_nonfinite(NonFiniteCheckPlan({Tensor::full({2}, std::nan(""), dtype, device)}), status, 7);
  const auto before = bytes_of(guarded);
  const FusedAdamPlan guarded_plan(guarded), plain_plan(plain);
  fused_adam_step(guarded_plan, h, 2, status);
  EXPECT_EQ(bytes_of(guarded), before);
  // A clean status: the same bits as with no guard at all.
  const auto plain_before = bytes_of(plain);
  ASSERT_EQ(plain_before, before);
  reset_nonfinite_status(status);
  for (int64_t t = 2; t <= 4; ++t) {
    fused_adam_step(guarded_plan, h, t, status);
    fused_adam_step(plain_plan, h, t);
  }
  EXPECT_NE(bytes_of(guarded), before);
  EXPECT_EQ(bytes_of(guarded), bytes_of(plain));
}

TEST(FusedAdam, GuardSetLeavesEverythingBitwiseUnchanged) {
  expect_guard_freezes_and_clean_status_changes_nothing(DType::Float32, Device::cpu());
  expect_guard_freezes_and_clean_status_changes_nothing(DType::Float64, Device::cpu());
}

TEST(FusedAdam, RejectsABadGuard) {
  Rng rng(16);
  Tensor p = random_tensor({4}, rng, DType::Float32);
  FusedAdamPlan plan({make_state(p, p.clone())});
  EXPECT_THROW(fused_adam_step(plan, AdamHyperParameters{}, 1, Tensor::zeros({1}, DType::Float32)), Error);
  EXPECT_THROW(fused_adam_step(plan, AdamHyperParameters{}, 1, Tensor::zeros({2}, DType::Int64)), Error);
}

TEST(FusedAdamCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(14);
  // Sizes cover a chunk boundary (65536), a tail that is not a multiple of 4, and a scalar.
  const std::vector<Shape> shapes = {{1}, {3, 7}, {kAdamChunkElements + 5}, {2 * kAdamChunkElements}, {1000, 3}};
  for (bool decoupled : {false, true}) {
    SCOPED_TRACE(decoupled ? "AdamW" : "Adam");
    std::vector<AdamTensors> cpu, gpu;
    for (const Shape& s : shapes) {
      Tensor p = random_tensor(s, rng, DType::Float32), g = random_tensor(s, rng, DType::Float32);
      cpu.push_back(make_state(p, g));
      gpu.push_back(make_state(p.cuda(), g.cuda()));
    }
    FusedAdamPlan cpu_plan(cpu), gpu_plan(gpu);
    EXPECT_EQ(gpu_plan.num_chunks(), 1 + 1 + 2 + 2 + 1);
    AdamHyperParameters h;
    h.lr = 1e-2;
    h.weight_decay = 0.1;
    h.decoupled_weight_decay = decoupled;
    for (int64_t t = 1; t <= 10; ++t) {
      fused_adam_step(cpu_plan, h, t);
      fused_adam_step(gpu_plan, h, t);
    }
    // The same float32 operations in the same order; only fused multiply-adds on the GPU differ.
    for (size_t k = 0; k < shapes.size(); ++k) {
      expect_close(gpu[k].param.cpu(), cpu[k].param, 1e-6, 1e-7, "param " + std::to_string(k));
      expect_close(gpu[k].exp_avg.cpu(), cpu[k].exp_avg, 1e-5, 1e-7, "exp_avg " + std::to_string(k));
      expect_close(gpu[k].exp_avg_sq.cpu(), cpu[k].exp_avg_sq, 1e-5, 1e-9, "exp_avg_sq " + std::to_string(k));
    }
  }
}

TEST(FusedAdamCuda, GuardSetLeavesEverythingBitwiseUnchanged) {
  FFR_REQUIRE_CUDA();
  expect_guard_freezes_and_clean_status_changes_nothing(DType::Float32, Device::cuda(0));
  // The guard must live where the parameters do.
  Rng rng(17);
  Tensor p = random_tensor({4}, rng, DType::Float32).cuda();
  FusedAdamPlan plan({make_state(p, p.clone())});
  EXPECT_THROW(fused_adam_step(plan, AdamHyperParameters{}, 1, make_nonfinite_status(Device::cpu())), Error);
}

TEST(FusedAdamCuda, RejectsNonFloat32Parameters) {
  FFR_REQUIRE_CUDA();
  Tensor p = Tensor::zeros({4}, DType::BFloat16, Device::cuda(0));
  EXPECT_THROW(FusedAdamPlan({make_state(p, p.clone())}), Error);
}

}  // namespace
}  // namespace ffr
