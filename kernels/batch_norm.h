// Batch normalisation over the channel dim of x [N, C, ...] (NCHW for BatchNorm2d, [N, C] for
// BatchNorm1d), with PyTorch's semantics:
//   training (or no running stats): normalise with the batch mean and the BIASED batch variance
//     over N and the spatial dims; running = (1 - momentum) running + momentum batch, with the
//     UNBIASED variance for running_var;
//   eval: normalise with running_mean / running_var (constants for autograd).
//   y = (x - mean) / sqrt(var + eps) * weight + bias.
//
// Element types: CPU: everything float32 or float64 (one dtype). CUDA: x float32 or bfloat16,
// the per-channel tensors (weight, bias, running stats) float32, so a bf16 model keeps exact
// statistics. Our own kernels on CUDA, every reduction in a fixed order (bit-identical runs).
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

// weight and bias [C] may be undefined (affine off) or not require grad (frozen affine).
// running_mean / running_var [C] may be undefined (no running stats: batch stats always); in
// training they are updated in place, on the device, with no host synchronisation.
// Differentiable in x, weight and bias; in training through the batch statistics.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// x viewed as [batch, channels, spatial].
struct BatchNormShape {
  int64_t batch = 0, channels = 0, spatial = 0;
  int64_t per_channel() const { return batch * spatial; }
};

// Launchers. `x_dtype` is x's (and y's, dx's) type; `stat` buffers ([C]: mean, invstd, weight,
// bias, running stats, dweight, dbias) are float32 on CUDA and x_dtype on CPU. Nullable where
// noted. Nothing reads a buffer it is not given.
//
// Batch statistics: mean, invstd = 1 / sqrt(biased var + eps); running stats updated if given.
void batch_norm_batch_stats_cpu(const void* x, DType x_dtype, const BatchNormShape& s, double momentum, double eps,
                                void* mean, void* invstd, void* running_mean, void* running_var);
void batch_norm_batch_stats_cuda(const void* x, DType x_dtype, const BatchNormShape& s, double momentum, double eps,
                                 void* mean, void* invstd, void* running_mean, void* running_var);
// Running statistics as (mean, invstd), for eval mode.
void batch_norm_running_stats_cpu(DType x_dtype, int64_t channels, double eps, const void* running_mean,
                                  const void* running_var, void* mean, void* invstd);
void batch_norm_running_stats_cuda(DType x_dtype, int64_t channels, double eps, const void* running_mean,
                                   const void* running_var, void* mean, void* invstd);
// y = (x - mean) invstd weight + bias (weight, bias nullable: 1 and 0).
void batch_norm_normalize_cpu(const void* x, DType x_dtype, const BatchNormShape& s, const void* mean,
                              const void* invstd, const void* weight, const void* bias, void* y);
void batch_norm_normalize_cuda(const void* x, DType x_dtype, const BatchNormShape& s, const void* mean,
                               const void* invstd, const void* weight, const void* bias, void* y);
// Gradients given dy. With batch_stats the statistics depend on x, adding the terms
//   dx = weight invstd (dy - mean(dy) - xhat mean(dy xhat)),  xhat = (x - mean) invstd;
// otherwise dx = weight invstd dy. dweight = sum(dy xhat), dbias = sum(dy). dx, dweight,
// dbias and weight nullable.
void batch_norm_backward_cpu(const void* dy, const void* x, DType x_dtype, const BatchNormShape& s,
                             const void* mean, const void* invstd, const void* weight, bool batch_stats, void* dx,
                             void* dweight, void* dbias);
void batch_norm_backward_cuda(const void* dy, const void* x, DType x_dtype, const BatchNormShape& s,
                              const void* mean, const void* invstd, const void* weight, bool batch_stats, void* dx,
                              void* dweight, void* dbias);

}  // namespace ffr
