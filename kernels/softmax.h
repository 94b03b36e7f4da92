// softmax and log_softmax over one axis. Tensors are contiguous, so x is viewed as
// (outer, dim, inner): element (o, d, i) at (o * dim + d) * inner + i, normalised over d.
// Both subtract the row maximum before exponentiating, so large logits do not overflow; a row of
// all -inf gives NaN (as PyTorch), a row with some -inf entries gives them probability 0.
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

Tensor softmax(const Tensor& x, int axis = -1);
Tensor log_softmax(const Tensor& x, int axis = -1);

// Launchers on raw buffers of `dtype` (CPU: float32/float64; CUDA: float32/bfloat16).
// log = true gives log_softmax. Backward reads the forward output y:
//   softmax:     dx = y * (dy - sum_d(dy * y))
//   log_softmax: dx = dy - exp(y) * sum_d(dy)
void softmax_forward_cpu(const void* x, void* y, DType dtype, int64_t outer, int64_t dim, int64_t inner, bool log);
void softmax_forward_cuda(const void* x, void* y, DType dtype, int64_t outer, int64_t dim, int64_t inner, bool log);
void softmax_backward_cpu(const void* y, const void* dy, void* dx, DType dtype, int64_t outer, int64_t dim,
                          int64_t inner, bool log);
void softmax_backward_cuda(const void* y, const void* dy, void* dx, DType dtype, int64_t outer, int64_t dim,
                           int64_t inner, bool log);

}  // namespace ffr
