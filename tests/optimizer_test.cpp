#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/nonfinite_check.h"
#include "optim/adam.h"
#include "optim/schedule.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

using testing::expect_close;
using testing::random_tensor;

Tensor parameter(const Shape& shape, Rng& rng, DType dtype = DType::Float32, Device device = Device::cpu()) {
  Tensor p = random_tensor(shape, rng, dtype).to(device);
  p.set_requires_grad(true);
  return p;
}

// PyTorch's update rule in double: torch.optim.Adam (coupled L2) or torch.optim.AdamW.
struct ReferenceAdam {
  std::vector<double> p, m, v;
  int64_t t = 0;

  void step(const std::vector<double>& grad, const AdamOptions& o, double lr, bool decoupled) {
    t += 1;
    const double bc1 = 1.0 - std::pow(o.beta1, double(t)), bc2 = 1.0 - std::pow(o.beta2, double(t));
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) {
        p[i] *= 1.0 - lr * o.weight_decay;
      } else {
        g += o.weight_decay * p[i];
      }
      m[i] = o.beta1 * m[i] + (1.0 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1.0 - o.beta2) * g * g;
      p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + o.eps);
    }
  }
};

// 100 steps on float32 parameters with gradients that change every step (rescaled so both
// tiny and large gradients occur) against the float64 reference: within 1e-6 relative.
void expect_matches_reference_over_100_steps(bool decoupled) {
  Rng rng(21);
  std::vector<Tensor> params = {parameter({4, 5}, rng), parameter({7}, rng), parameter({1}, rng)};
  AdamOptions options;
  options.lr = 1e-3;
  options.weight_decay = decoupled ? 1e-2 : 1e-5;
  std::unique_ptr<Adam> adam = decoupled ? std::make_unique<AdamW>(params, options) : std::make_unique<Adam>(params, options);
  std::vector<ReferenceAdam> reference(params.size());
  for (size_t k = 0; k < params.size(); ++k) {
    reference[k].p = params[k].to_vector<double>();
    reference[k].m.assign(reference[k].p.size(), 0.0);
    reference[k].v.assign(reference[k].p.size(), 0.0);
  }
  const LearningRateSchedule schedule = LearningRateSchedule::cosine(options.lr, 100, 10);
  for (int step = 0; step < 100; ++step) {
    schedule.apply(*adam);
    const double scale = std::pow(10.0, double(step % 5) - 2.0);  // 1e-2 .. 1e2
    for (size_t k = 0; k < params.size(); ++k) {
      Tensor g = random_tensor(params[k].shape(), rng, DType::Float32, -scale, scale);
      params[k].set_grad(g);
      reference[k].step(g.to_vector<double>(), options, schedule.at(step), decoupled);
    }
    adam->step();
  }
  EXPECT_EQ(adam->steps_taken(), 100);
  for (size_t k = 0; k < params.size(); ++k) {
    expect_close(params[k], Tensor::from_vector(reference[k].p, params[k].shape()), 1e-6, 1e-7,
                 "parameter " + std::to_string(k));
  }
}

TEST(Optimizer, AdamMatchesFloat64PyTorchRuleOver100Steps) { expect_matches_reference_over_100_steps(false); }
TEST(Optimizer, AdamWMatchesFloat64PyTorchRuleOver100Steps) { expect_matches_reference_over_100_steps(true); }

TEST(Optimizer, TrainsThroughAutograd) {
  // Minimise sum((w - 3)^2): Adam moves w by about lr per step toward 3.
  Tensor w = Tensor::from_vector(std::vector<float>{0.0f, 6.0f}, {2}).set_requires_grad(true);
  Adam adam({w}, AdamOptions{0.1});
  for (int i = 0; i < 200; ++i) {
    adam.zero_grad();
    Tensor d = add_scalar(w, -3.0);
    sum(mul(d, d)).backward();
    adam.step();
  }
  expect_close(w, Tensor::from_vector(std::vector<float>{3.0f, 3.0f}, {2}), 0.0, 0.05, "minimum");
}

TEST(Optimizer, SkipsParametersWithoutGradAndCountsStepsPerParameter) {
  Rng rng(22);
  Tensor a = parameter({3}, rng), b = parameter({2}, rng);
  const std::vector<float> b_before = b.to_vector<float>();
  Adam adam({a, b});
  a.set_grad(Tensor::ones({3}));
  adam.step();
  adam.step();
  EXPECT_EQ(b.to_vector<float>(), b_before);
  EXPECT_EQ(adam.parameter_step(0), 2);
  EXPECT_EQ(adam.parameter_step(1), 0);
  EXPECT_EQ(adam.state_tensors().size(), 1u + 3u);  // "step" + a's three entries

  // b's first update is its t = 1, as in PyTorch: a step of lr * sign(g).
  b.set_grad(Tensor::full({2}, -2.0));
  adam.step();
  EXPECT_EQ(adam.parameter_step(0), 3);
  EXPECT_EQ(adam.parameter_step(1), 1);
  const std::vector<float> b_after = b.to_vector<float>();
  for (size_t i = 0; i < 2; ++i) EXPECT_NEAR(b_after[i], b_before[i] + 1e-3f, 1e-7);
}

TEST(Optimizer, ZeroGradKeepsTheBuffers) {
  Rng rng(23);
  Tensor a = parameter({3}, rng);
  a.set_grad(Tensor::ones({3}));
  const void* buffer = a.grad().raw_data();
  Adam adam({a});
  adam.zero_grad();
  EXPECT_EQ(a.grad().raw_data(), buffer);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{0, 0, 0}));
}

TEST(Optimizer, SaveAndRestoreContinuesIdentically) {
  Rng rng(24);
  Tensor a = parameter({4, 3}, rng), b = parameter({5}, rng);
  std::vector<std::string> names = {"fc.weight", "fc.bias"};
  Adam first({a, b}, AdamOptions{1e-2, 0.9, 0.999, 1e-8, 1e-3}, names);
  auto set_grads = [](std::vector<Tensor> params, uint64_t seed) {
    Rng g(seed);
    for (Tensor& p : params) p.set_grad(random_tensor(p.shape(), g, DType::Float32));
  };
  for (int i = 0; i < 5; ++i) {
    set_grads({a, b}, 100 + i);
    first.step();
  }
  // A snapshot, as a checkpoint writer would take it.
  NamedTensors saved;
  for (const auto& [name, t] : first.state_tensors()) saved.emplace_back(name, t.clone());
  std::vector<std::string> keys;
  for (const auto& [name, t] : saved) keys.push_back(name);
  EXPECT_EQ(keys, (std::vector<std::string>{"step", "fc.weight.step", "fc.weight.exp_avg", "fc.weight.exp_avg_sq",
                                            "fc.bias.step", "fc.bias.exp_avg", "fc.bias.exp_avg_sq"}));

  Tensor a2 = a.clone().set_requires_grad(true), b2 = b.clone().set_requires_grad(true);
  Adam second({a2, b2}, AdamOptions{1e-2, 0.9, 0.999, 1e-8, 1e-3}, names);
  second.load_state(saved);
  EXPECT_EQ(second.steps_taken(), 5);
  EXPECT_EQ(second.parameter_step(0), 5);
  for (int i = 5; i < 10; ++i) {
    set_grads({a, b}, 100 + i);
    set_grads({a2, b2}, 100 + i);
    first.step();
    second.step();
  }
  EXPECT_EQ(a2.to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(b2.to_vector<float>(), b.to_vector<float>());
}

TEST(Optimizer, LoadStateRejectsBadEntriesAndChangesNothing) {
  Rng rng(25);
  Tensor a = parameter({3}, rng);
  Adam adam({a}, AdamOptions{}, {"w"});
  a.set_grad(Tensor::ones({3}));
  adam.step();
  const NamedTensors good = adam.state_tensors();
  auto with = [&](const std::string& key, const Tensor& t) {
    NamedTensors s;
    for (const auto& e : good) s.emplace_back(e.first == key ? key : e.first, e.first == key ? t : e.second);
    return s;
  };
  EXPECT_THROW(adam.load_state(with("w.exp_avg", Tensor::zeros({4}))), InputError);
  EXPECT_THROW(adam.load_state(with("w.step", Tensor::full({}, 1.5))), InputError);
  NamedTensors unknown = good;
  unknown.emplace_back("v.exp_avg", Tensor::zeros({3}));
  EXPECT_THROW(adam.load_state(unknown), InputError);
  NamedTensors incomplete = {good[0], good[1], good[2]};  // no w.exp_avg_sq
  EXPECT_THROW(adam.load_state(incomplete), InputError);
  EXPECT_EQ(adam.parameter_step(0), 1);
  EXPECT_EQ(adam.steps_taken(), 1);
}

TEST(Optimizer, RejectsBadParameters) {
  Rng rng(26);
  Tensor leaf = parameter({2}, rng);
  Tensor not_leaf = mul_scalar(leaf, 2.0);
  EXPECT_THROW(Adam({not_leaf}), Error);
  EXPECT_THROW(Adam({random_tensor({2}, rng, DType::Float32)}), Error);  // no requires_grad
  EXPECT_THROW(Adam({leaf, leaf}), Error);
  EXPECT_THROW(Adam({leaf}, AdamOptions{1e-3, 1.0}), Error);  // beta1 = 1
  EXPECT_THROW(Adam({leaf}, AdamOptions{}, {"a", "b"}), Error);
  Adam adam({leaf});
  leaf.set_grad(Tensor::ones({3}));
  EXPECT_THROW(adam.step(), Error);  // grad shape differs from the parameter's
}

TEST(Optimizer, SkipGuardFreezesParametersAndStateButCountsSteps) {
  Rng rng(27);
  Tensor a = parameter({4, 3}, rng), b = parameter({5}, rng);
  Tensor a2 = a.detach().clone().set_requires_grad(true), b2 = b.detach().clone().set_requires_grad(true);
  Adam guarded({a, b}), plain({a2, b2});
  Tensor status = make_nonfinite_status(Device::cpu());
  guarded.set_skip_guard(status);
  auto set_grads = [&](int step) {
    Rng g(100 + uint64_t(step));
    const Tensor ga = random_tensor(a.shape(), g, DType::Float32), gb = random_tensor(b.shape(), g, DType::Float32);
    a.set_grad(ga);
    b.set_grad(gb);
    a2.set_grad(ga.clone());
    b2.set_grad(gb.clone());
  };
  // A clean status: exactly the unguarded update.
  for (int step = 0; step < 3; ++step) {
    set_grads(step);
    guarded.step();
    plain.step();
  }
  EXPECT_EQ(a.to_vector<float>(), a2.to_vector<float>());
  EXPECT_EQ(b.to_vector<float>(), b2.to_vector<float>());
  // A set status: parameters and moments stay as they are; the step counts go on.
  status.data<int64_t>()[0] = encode_nonfinite_key(3, 1);
  const NamedTensors before = guarded.state_tensors();
  std::vector<std::vector<float>> moments;
  for (const auto& [name, t] : before)
    if (t.dtype() == DType::Float32) moments.push_back(t.to_vector<float>());
  const std::vector<float> a_before = a.to_vector<float>(), b_before = b.to_vector<float>();
  for (int step = 3; step < 5; ++step) {
    set_grads(step);
    guarded.step();
  }
  EXPECT_EQ(a.to_vector<float>(), a_before);
  EXPECT_EQ(b.to_vector<float>(), b_before);
  size_t m = 0;
  for (const auto& [name, t] : guarded.state_tensors())
    if (t.dtype() == DType::Float32) EXPECT_EQ(t.to_vector<float>(), moments[m++]) << name;
  EXPECT_EQ(m, moments.size());
  EXPECT_EQ(guarded.parameter_step(0), 5);
  EXPECT_EQ(guarded.steps_taken(), 5);
  // No guard: updates again.
  guarded.set_skip_guard(Tensor());
  guarded.step();
  EXPECT_NE(a.to_vector<float>(), a_before);
  EXPECT_THROW(guarded.set_skip_guard(Tensor::zeros({1}, DType::Float32)), Error);
  EXPECT_THROW(guarded.set_skip_guard(Tensor::zeros({2}, DType::Int64)), Error);
}

TEST(Optimizer, ConstantAndCosineSchedules) {
  const LearningRateSchedule constant = LearningRateSchedule::constant(0.1);
  EXPECT_EQ(constant.at(0), 0.1);
  EXPECT_EQ(constant.at(12345), 0.1);

  const LearningRateSchedule cosine = LearningRateSchedule::cosine(1.0, 110, 10, 0.1);
  EXPECT_DOUBLE_EQ(cosine.at(0), 0.1);   // warmup: (0 + 1) / 10
  EXPECT_DOUBLE_EQ(cosine.at(4), 0.5);
  EXPECT_DOUBLE_EQ(cosine.at(10), 1.0);  // top of the cosine
  EXPECT_DOUBLE_EQ(cosine.at(60), 0.55); // halfway: min + (max - min) / 2
  EXPECT_DOUBLE_EQ(cosine.at(110), 0.1);
  EXPECT_DOUBLE_EQ(cosine.at(500), 0.1);

  const LearningRateSchedule no_warmup = LearningRateSchedule::cosine(2.0, 4);
  EXPECT_DOUBLE_EQ(no_warmup.at(0), 2.0);
  EXPECT_NEAR(no_warmup.at(2), 1.0, 1e-15);
  EXPECT_THROW(LearningRateSchedule::cosine(1.0, 10, 20), Error);
  EXPECT_THROW(LearningRateSchedule::cosine(1.0, 10, 0, 2.0), Error);

  Rng rng(27);
  Tensor p = parameter({1}, rng);
  Adam adam({p});
  cosine.apply(adam);
  EXPECT_DOUBLE_EQ(adam.lr(), 0.1);
}

TEST(FusedAdamCuda, OptimizerSameResultAsCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(28);
  std::vector<Tensor> cpu = {parameter({300, 300}, rng), parameter({17}, rng)};
  std::vector<Tensor> gpu;
  for (const Tensor& p : cpu) gpu.push_back(p.detach().cuda().set_requires_grad(true));
  AdamW cpu_opt(cpu, AdamOptions{1e-2, 0.9, 0.999, 1e-8, 0.05});
  AdamW gpu_opt(gpu, AdamOptions{1e-2, 0.9, 0.999, 1e-8, 0.05});
  for (int i = 0; i < 20; ++i) {
    for (size_t k = 0; k < cpu.size(); ++k) {
      Tensor g = random_tensor(cpu[k].shape(), rng, DType::Float32);
      cpu[k].set_grad(g);
      if (i == 0) {
        gpu[k].set_grad(g.cuda());
      } else {
        Tensor gg = gpu[k].grad();
        gg.copy_(g);  // in place, as backward accumulates: the cached plan stays valid
      }
    }
    cpu_opt.step();
    gpu_opt.step();
  }
  for (size_t k = 0; k < cpu.size(); ++k) expect_close(gpu[k].cpu(), cpu[k], 1e-6, 1e-7, "parameter");
}

TEST(FusedAdamCuda, OptimizerSkipGuardReadOnTheDevice) {
  FFR_REQUIRE_CUDA();
  Rng rng(29);
  Tensor w = parameter({300, 300}, rng, DType::Float32, Device::cuda(0));
  Adam adam({w});
  Tensor status = make_nonfinite_status(w.device());
  adam.set_skip_guard(status);
  w.set_grad(random_tensor(w.shape(), rng, DType::Float32).cuda());
  adam.step();  // clean: updates
  const std::vector<float> after_first = w.to_vector<float>();
  Tensor poisoned = w.grad();
  poisoned.fill_(std::nan(""));
  record_first_nonfinite(NonFiniteCheckPlan({poisoned}), status, 2);  // set on the device only
  adam.step();
  adam.step();
  EXPECT_EQ(w.to_vector<float>(), after_first);
  EXPECT_EQ(adam.parameter_step(0), 3);
}

}  // namespace
}  // namespace ffr
