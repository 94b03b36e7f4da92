// Layer normalisation over the last dimension (Ba, Kiros & Hinton 2016), PyTorch semantics:
//   y = (x - mean) / sqrt(var + eps) * weight + bias,   var biased (divided by D).
// The forward saves each row's mean and rstd = 1/sqrt(var + eps); the backward uses them instead
// of recomputing the statistics. Statistics are float32 on CUDA (bf16 inputs too) and the
// input's type on CPU (float64 for gradient checks).
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

// x: [..., D]; weight, bias: [D] or undefined (scale 1, shift 0). Same dtype and device as x.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

// Launchers over `rows` rows of `cols` elements of `dtype`. weight/bias may be null.
// mean/rstd: [rows] of the statistics type (CPU: dtype; CUDA: float32).
void layer_norm_forward_cpu(const void* x, const void* weight, const void* bias, void* y, void* mean, void* rstd,
                            int64_t rows, int64_t cols, DType dtype, double eps);
void layer_norm_forward_cuda(const void* x, const void* weight, const void* bias, void* y, void* mean, void* rstd,
                             int64_t rows, int64_t cols, DType dtype, double eps);
// Any of dx, dweight, dbias may be null (that gradient is not computed). dweight/dbias are
// sums over rows, in a fixed order (bit-identical run to run).
void layer_norm_backward_cpu(const void* dy, const void* x, const void* weight, const void* mean, const void* rstd,
                             void* dx, void* dweight, void* dbias, int64_t rows, int64_t cols, DType dtype);
void layer_norm_backward_cuda(const void* dy, const void* x, const void* weight, const void* mean, const void* rstd,
                              void* dx, void* dweight, void* dbias, int64_t rows, int64_t cols, DType dtype);

}  // namespace ffr
