// Fused Adam / AdamW: one launch updates every parameter of a model (multi-tensor apply).
//
// The update is torch.optim.Adam's (single-tensor path), written once below for the CPU
// reference and the CUDA kernel:
//   Adam  (coupled L2):  g += wd * p
//   AdamW (decoupled):   p *= 1 - lr * wd
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//
// A FusedAdamPlan lays a parameter set out as chunks {param, grad, exp_avg, exp_avg_sq, numel};
// on CUDA the chunk array lives on the device. It is built once per parameter set and reused every
// step, so a step costs one launch and no host-to-device traffic. The step count t is a host
// integer (the host issues the steps); the bias corrections are computed from it on the host, so
// nothing is ever read back from the device.
//
// Guard: given a non-finite status (kernels/nonfinite_check.h), a step whose status is set
// (!= kNoNonFinite) leaves every parameter and moment as it was. The CUDA kernel reads the status
// on the device, so a poisoned update is skipped without the host waiting for the check.
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"
#include "kernels/nonfinite_check.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace ffr {

struct AdamHyperParameters {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;  // false: Adam (coupled L2); true: AdamW
};

// The per-step scalars of the update, derived on the host from the hyper-parameters and t.
template <typename T>
struct AdamStepCoefficients {
  T beta1, beta2;
  T one_minus_beta1, one_minus_beta2;
  T eps;
  T weight_decay;          // coupled L2 (0 for AdamW)
  T decay_factor;          // 1 - lr * wd for AdamW (1 for Adam)
  T step_size;             // lr / (1 - b1^t)
  T bias_correction2_sqrt; // sqrt(1 - b2^t)
};

AdamStepCoefficients<double> adam_step_coefficients(const AdamHyperParameters& h, int64_t step);

template <typename T>
AdamStepCoefficients<T> cast_coefficients(const AdamStepCoefficients<double>& c) {
  return {T(c.beta1),        T(c.beta2),        T(c.one_minus_beta1),
          T(c.one_minus_beta2), T(c.eps),       T(c.weight_decay),
          T(c.decay_factor), T(c.step_size),    T(c.bias_correction2_sqrt)};
}

// One element of the update, in the same operation order as PyTorch's Adam.
template <typename T>
FFR_HOST_DEVICE void adam_update_element(T& param, T grad, T& exp_avg, T& exp_avg_sq,
                                         const AdamStepCoefficients<T>& c) {
  T p = param * c.decay_factor;
  const T g = grad + c.weight_decay * p;
  const T m = c.beta1 * exp_avg + c.one_minus_beta1 * g;
  const T v = c.beta2 * exp_avg_sq + c.one_minus_beta2 * g * g;
  const T denom = std::sqrt(v) / c.bias_correction2_sqrt + c.eps;
  p -= c.step_size * (m / denom);
  param = p;
  exp_avg = m;
  exp_avg_sq = v;
}

// A contiguous slice of one parameter and its state (all of the same float dtype).
struct AdamChunk {
  void* param;
  const void* grad;
  void* exp_avg;
  void* exp_avg_sq;
  int64_t numel;
};

// Elements per chunk on CUDA: one block sweeps one chunk, so large tensors spread over many SMs
// while small ones (biases, norms) still cost a single block.
constexpr int64_t kAdamChunkElements = 65536;

// One parameter and its state, as the optimizer holds them.
struct AdamTensors {
  Tensor param;
  Tensor grad;
  Tensor exp_avg;
  Tensor exp_avg_sq;
};

class FusedAdamPlan {
 public:
  FusedAdamPlan() = default;
  // All tensors on one device, one float dtype (CUDA: float32; CPU: float32 or float64),
  // each grad/state the shape of its param. Grads must be defined. The plan holds references to
  // the tensors, so its chunks stay valid as long as it lives.
  explicit FusedAdamPlan(const std::vector<AdamTensors>& tensors);

  // True when `tensors` are the same buffers this plan was built for (so it can be reused).
  bool matches(const std::vector<AdamTensors>& tensors) const;

  int64_t num_chunks() const { return int64_t(host_chunks_.size()); }
  int64_t num_tensors() const { return int64_t(tensors_.size()); }
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }
  const std::vector<AdamChunk>& host_chunks() const { return host_chunks_; }
  const Tensor& device_chunks() const { return device_chunks_; }

 private:
  std::vector<uintptr_t> key_;  // (param, grad, exp_avg, exp_avg_sq addresses, numel) per tensor
  std::vector<AdamTensors> tensors_;  // held so the chunks never point at freed memory
  std::vector<AdamChunk> host_chunks_;
  Tensor device_chunks_;  // CUDA: the chunk array on the device
  int64_t numel_ = 0;
  Device device_;
  DType dtype_ = DType::Float32;
};

// One Adam/AdamW step (t = `step`, counting from 1) over every tensor of the plan. `skip_if_set`:
// undefined (no guard), or a one-element int64 status on the plan's device; when it holds
// anything but kNoNonFinite the step changes nothing.
void fused_adam_step(const FusedAdamPlan& plan, const AdamHyperParameters& hyper, int64_t step,
                     const Tensor& skip_if_set = Tensor());

// Launchers. CPU: `chunks` on the host, float32 or float64. CUDA: `device_chunks` is a device
// array of `num_chunks` AdamChunk, float32. `skip_if_set`: nullptr (no guard) or the status, on
// the host for the CPU and on the device for CUDA.
void fused_adam_cpu(const AdamChunk* chunks, int64_t num_chunks, DType dtype,
                    const AdamStepCoefficients<double>& coefficients, const int64_t* skip_if_set = nullptr);
void fused_adam_cuda(const void* device_chunks, int64_t num_chunks, const AdamStepCoefficients<double>& coefficients,
                     const int64_t* skip_if_set = nullptr);

}  // namespace ffr
