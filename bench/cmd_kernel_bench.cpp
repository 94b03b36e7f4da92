// `ffr-bench kernel-bench`: each fused kernel against the unfused composition of engine ops it
// replaces, on the GPU (CUDA events) or, without one, on the CPU (wall clock), and the ratio.
//   group_cross_entropy (GroupDRO): log-softmax, one-hot picks, per-group sums, the q update and
//       the weighted loss from elementwise/reduce ops, dlogits from autograd;
//   subgroup_accuracy: copy logits, labels and groups to the host and count there;
//   fused Adam: the update as ~12 elementwise ops per parameter tensor;
//   nonfinite check (the trainer's NaN/Inf guard over the loss and every gradient): per tensor,
//       sum(g * 0) (NaN iff g holds a NaN or Inf) accumulated into one scalar on the device, as a
//       per-tensor isfinite().all() would do; a second line puts the check beside the Adam step
//       it guards, to show what leaving it on costs.
#include "bench/command.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "ffr/numeric_guard.h"
#include "kernels/elementwise.h"
#include "kernels/group_cross_entropy.h"
#include "kernels/reduce.h"
#include "kernels/subgroup_accuracy.h"
#include "optim/adam.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#ifdef FFR_WITH_CUDA
#include "engine/cuda/context.h"
#endif

namespace ffr::bench {
namespace {

struct KernelBenchOptions {
  std::string device = "auto";
  int64_t batch = 128;
  int64_t classes = 1000;
  int64_t groups = 8;
  int64_t params = 0;   // 0: ResNet-50's 25.6M on a GPU, 2M on the CPU
  int64_t tensors = 161;  // ResNet-50 has 161 parameter tensors
  int iters = 0;        // 0: 50 on a GPU, 10 on the CPU
};

// Mean milliseconds per call of `f` over `iters` calls, after 2 warm-up calls. On CUDA the calls
// are bracketed by events on the engine's stream, so the time is the GPU's, launch gaps included.
double time_ms(Device device, int iters, const std::function<void()>& f) {
  for (int i = 0; i < 2; ++i) f();
#ifdef FFR_WITH_CUDA
  if (device.is_cuda()) {
    cudaEvent_t start, stop;
    FFR_CUDA_CHECK(cudaEventCreate(&start));
    FFR_CUDA_CHECK(cudaEventCreate(&stop));
    FFR_CUDA_CHECK(cudaEventRecord(start, cuda::stream()));
    for (int i = 0; i < iters; ++i) f();
    FFR_CUDA_CHECK(cudaEventRecord(stop, cuda::stream()));
    FFR_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.f;
    FFR_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    FFR_CUDA_CHECK(cudaEventDestroy(start));
    FFR_CUDA_CHECK(cudaEventDestroy(stop));
    return double(ms) / iters;
  }
#endif
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) f();
  synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / iters;
}

void report(const std::string& kernel, const std::string& shape, double fused, double unfused) {
  std::printf("%-32s %-30s %10.3f %12.3f %9.1fx\n", kernel.c_str(), shape.c_str(), fused, unfused, unfused / fused);
}

Tensor one_hot(const std::vector<int64_t>& ids, int64_t n, int64_t width, Device device) {
  std::vector<float> v(static_cast<size_t>(n * width), 0.f);
  for (int64_t i = 0; i < n; ++i) v[size_t(i * width + ids[size_t(i)])] = 1.f;
  return Tensor::from_vector(v, {n, width}, DType::Float32, device);
}

void bench_group_cross_entropy(const KernelBenchOptions& o, Device device, int iters) {
  const int64_t n = o.batch, c = o.classes, g = o.groups;
  Rng rng(1);
  Tensor logits = Tensor::uniform({n, c}, -4.0, 4.0, rng, DType::Float32, device);
  std::vector<int64_t> labels(static_cast<size_t>(n)), groups(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = int64_t(rng.below(uint64_t(c)));
    groups[size_t(i)] = i % g;  // every group present, so the composition needs no empty-group guard
  }
  const Tensor labels_t = Tensor::from_vector(labels, {n}, DType::Int64, device);
  const Tensor groups_t = Tensor::from_vector(groups, {n}, DType::Int64, device);
  Tensor q = Tensor::full({g}, 1.0 / double(g), DType::Float32, device);
  GroupCrossEntropyConfig config;
  config.mode = GroupLoss::GroupDRO;
  const double fused = time_ms(device, iters, [&] { group_cross_entropy(logits, labels_t, groups_t, q, config); });

  // The composition; one-hot matrices are built once, outside the timing (in its favour).
  const Tensor label_hot = one_hot(labels, n, c, device);
  const Tensor group_hot = one_hot(groups, n, g, device);
  const Tensor counts = sum(group_hot, {0});
  Tensor q2 = Tensor::full({g}, 1.0 / double(g), DType::Float32, device);
  Tensor x = logits.clone().set_requires_grad(true);
  const double unfused = time_ms(device, iters, [&] {
    x.set_grad(Tensor());
    Tensor lse = log(sum(exp(x), {1}, true));  // inputs in [-4, 4]: no max shift needed
    Tensor per_sample = neg(sum(mul(sub(x, lse), label_hot), {1}));
    Tensor group_loss = div(sum(mul(per_sample.reshape({n, 1}), group_hot), {0}), counts);
    {
      NoGradGuard no_grad;
      Tensor updated = mul(q2, exp(mul_scalar(group_loss.detach(), config.step_size)));
      q2 = div(updated, sum(updated).reshape({1}));
    }
    sum(mul(group_loss, q2)).backward();
  });
  report("group_cross_entropy (GroupDRO)",
         "N=" + std::to_string(n) + " C=" + std::to_string(c) + " G=" + std::to_string(g), fused, unfused);
}

void bench_subgroup_accuracy(const KernelBenchOptions& o, Device device, int iters) {
  const int64_t n = o.batch, c = o.classes, g = o.groups;
  Rng rng(2);
  Tensor logits = Tensor::uniform({n, c}, -4.0, 4.0, rng, DType::Float32, device);
  std::vector<int64_t> labels(static_cast<size_t>(n)), groups(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = int64_t(rng.below(uint64_t(c)));
    groups[size_t(i)] = int64_t(rng.below(uint64_t(g)));
  }
  const Tensor labels_t = Tensor::from_vector(labels, {n}, DType::Int64, device);
  const Tensor groups_t = Tensor::from_vector(groups, {n}, DType::Int64, device);
  SubgroupAccuracy acc(g, device);
  const double fused = time_ms(device, iters, [&] { acc.update(logits, labels_t, groups_t); });

  std::vector<int64_t> correct(static_cast<size_t>(g)), total(static_cast<size_t>(g));
  const double unfused = time_ms(device, iters, [&] {
    const std::vector<float> x = logits.to_vector<float>();  // the copies the fused kernel avoids
    const std::vector<int64_t> y = labels_t.to_vector<int64_t>(), grp = groups_t.to_vector<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const auto row = x.begin() + i * c;
      const int64_t pred = std::max_element(row, row + c) - row;
      correct[size_t(grp[size_t(i)])] += pred == y[size_t(i)];
      total[size_t(grp[size_t(i)])] += 1;
    }
  });
  report("subgroup_accuracy (update)",
         "N=" + std::to_string(n) + " C=" + std::to_string(c) + " G=" + std::to_string(g), fused, unfused);
}

void bench_adam(const KernelBenchOptions& o, Device device, int iters) {
  const int64_t tensors = std::max<int64_t>(1, std::min(o.tensors, o.params));
  Rng rng(3);
  std::vector<Tensor> params, composed;
  for (int64_t k = 0; k < tensors; ++k) {
    const int64_t size = o.params / tensors + (k < o.params % tensors ? 1 : 0);
    Tensor p = Tensor::uniform({size}, -1.0, 1.0, rng, DType::Float32, device);
    Tensor grad = Tensor::uniform({size}, -1.0, 1.0, rng, DType::Float32, device);
    p.set_requires_grad(true);
    p.set_grad(grad);
    params.push_back(p);
    composed.push_back(p.detach().clone());
  }
  AdamOptions options;
  options.weight_decay = 1e-5;  // the paper's
  Adam adam(params, options);
  const double fused = time_ms(device, iters, [&] { adam.step(); });

  // The same update from elementwise ops, tensor by tensor (step t fixed: the scalars are host math).
  std::vector<Tensor> m, v;
  for (const Tensor& p : composed) {
    m.push_back(Tensor::zeros(p.shape(), DType::Float32, device));
    v.push_back(Tensor::zeros(p.shape(), DType::Float32, device));
  }
  const double b1 = options.beta1, b2 = options.beta2, t = 10;
  const double step_size = options.lr / (1 - std::pow(b1, t)), bc2_sqrt = std::sqrt(1 - std::pow(b2, t));
  NoGradGuard no_grad;
  const double unfused = time_ms(device, iters, [&] {
    for (size_t k = 0; k < composed.size(); ++k) {
      Tensor& p = composed[k];
      const Tensor g = add(params[k].grad(), mul_scalar(p, options.weight_decay));
      const Tensor m_new = add(mul_scalar(m[k], b1), mul_scalar(g, 1 - b1));
      const Tensor v_new = add(mul_scalar(v[k], b2), mul_scalar(mul(g, g), 1 - b2));
      const Tensor denom = add_scalar(mul_scalar(sqrt(v_new), 1 / bc2_sqrt), options.eps);
      const Tensor p_new = sub(p, mul_scalar(div(m_new, denom), step_size));
      m[k].copy_(m_new);
      v[k].copy_(v_new);
      p.copy_(p_new);
    }
  });
  report("adam step (coupled L2)", "P=" + std::to_string(o.params) + " in " + std::to_string(tensors) + " tensors",
         fused, unfused);

  // The NaN/Inf guard over the loss and the same gradients (ffr/numeric_guard.h).
  std::vector<Tensor> checked{Tensor::full({}, 1.5, DType::Float32, device)};
  std::vector<std::string> names{"loss"};
  for (size_t k = 0; k < params.size(); ++k) {
    checked.push_back(params[k].grad());
    names.push_back(std::to_string(k));
  }
  NumericGuard guard(names, device);
  int64_t step = 0;
  const double check = time_ms(device, iters, [&] { guard.check(checked, ++step); });
  Tensor any_bad = Tensor::zeros({}, DType::Float32, device);
  const double composed_check = time_ms(device, iters, [&] {
    for (const Tensor& t : checked) add_(any_bad, sum(mul_scalar(t, 0.0)));
  });
  FFR_CHECK(!guard.wait().has_value(), "kernel-bench: the guard saw a NaN/Inf in finite inputs");
  report("nonfinite check (loss + grads)", "P=" + std::to_string(o.params) + " in " + std::to_string(tensors) + " tensors",
         check, composed_check);
  std::printf("%-32s %-30s %10.3f %12.3f %9.1f%%\n", "  check beside the adam step", "(check ms, adam ms, share)",
              check, fused, 100.0 * check / fused);
}

void run_kernel_bench(KernelBenchOptions o) {
  Device device = default_device();
  if (o.device == "cpu") device = Device::cpu();
  if (o.device == "cuda") {
    if (!cuda_available()) throw InputError("--device cuda: " + cuda_unavailable_reason());
    device = Device::cuda(0);
  }
  const bool gpu = device.is_cuda();
  if (o.params == 0) o.params = gpu ? 25557032 : 2000000;
  if (o.iters == 0) o.iters = gpu ? 50 : 10;
  if (o.batch < 1 || o.classes < 1 || o.groups < 1 || o.params < 1 || o.tensors < 1 || o.iters < 1)
    throw UsageError("kernel-bench: --batch-size, --classes, --groups, --params, --tensors and --iters must be >= 1");
  if (gpu) {
    std::printf("kernel-bench on %s (CUDA events, mean of %d iterations after 2 warm-up)\n", device.str().c_str(),
                o.iters);
  } else {
    const std::string why = cuda_available() ? "--device cpu" : cuda_unavailable_reason();
    std::printf("kernel-bench on the CPU: the CPU reference kernels, not the CUDA ones (%s); wall clock, mean of %d "
                "iterations after 2 warm-up\n",
                why.c_str(), o.iters);
  }
  std::printf("%-32s %-30s %10s %12s %10s\n", "kernel", "shape", "fused ms", "unfused ms", "ratio");
  bench_group_cross_entropy(o, device, o.iters);
  bench_subgroup_accuracy(o, device, o.iters);
  bench_adam(o, device, o.iters);
}

void setup(CLI::App& sub) {
  auto options = std::make_shared<KernelBenchOptions>();
  sub.add_option("--device", options->device, "where to run")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  sub.add_option("--batch-size", options->batch, "rows of logits (N)")->capture_default_str();
  sub.add_option("--classes", options->classes, "classes (C)")->capture_default_str();
  sub.add_option("--groups", options->groups, "groups (G)")->capture_default_str();
  sub.add_option("--params", options->params, "Adam parameters in all (0: 25.6M on a GPU, 2M on the CPU)")
      ->capture_default_str();
  sub.add_option("--tensors", options->tensors, "parameter tensors the Adam parameters are split into")
      ->capture_default_str();
  sub.add_option("--iters", options->iters, "timed iterations (0: 50 on a GPU, 10 on the CPU)")->capture_default_str();
  sub.callback([options] { run_kernel_bench(*options); });
}

const bool registered =
    register_command({"kernel-bench", "time the fused kernels against the unfused engine ops they replace", setup});

}  // namespace
}  // namespace ffr::bench
