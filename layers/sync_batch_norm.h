// Synchronised batch norm (`run --distributed --sync-bn`): training-mode batch normalisation whose
// batch statistics are those of the global batch, over every rank's slice, as PyTorch's
// SyncBatchNorm. Each rank sums x and x^2 per channel over its slice, the sums are all-reduced,
// and the gradient flows back through the same all-reduce (its backward all-reduces the
// statistics' gradients), so every rank's gradient is its share of the global batch's.
// Composed of differentiable ops (kernels/elementwise, kernels/reduce), not a fused kernel: it
// runs once per BN layer per step, and only in data-parallel training.
#pragma once

#include "engine/comm/communicator.h"
#include "engine/tensor.h"

namespace ffr {

// x [N, C, H, W] float32 (this rank's slice, N may differ between ranks, even be 0 on some);
// running_mean / running_var [C] updated in place as batch_norm does (biased variance normalises,
// the unbiased one enters running_var), identically on every rank.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                       Tensor& running_var, double momentum, double eps, comm::Communicator& communicator);

// Sum over the ranks of x, differentiable: its backward sums the gradients over the ranks.
Tensor all_reduce_sum_differentiable(const Tensor& x, comm::Communicator& communicator);

}  // namespace ffr
