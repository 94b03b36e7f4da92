// Group-weighted cross-entropy: the loss of ERM, of re-weighted training and of GroupDRO
// (Sagawa et al. 2020) from one fused op over the logits.
//
// With per-sample cross-entropy l_i = logsumexp(x_i) - x_i[y_i] and the batch's per-group mean
// losses L_k = (sum of l_i over group k) / n_k (n_k = samples of group k in the batch):
//   Mean:      loss = (1/N) sum_i l_i                       (plain mean cross-entropy)
//   Weighted:  loss = sum_k q_k L_k   (groups absent from the batch contribute 0)
//   GroupDRO:  first, on the device, q_k <- q_k exp(eta (L_k + C / sqrt(s_k))) for the groups
//              present in the batch (s_k: train-split group sizes; C = 0 skips the adjustment),
//              q <- q / sum(q); then loss = sum_k q_k L_k with the updated q.
// q is treated as a constant in the gradient: dloss/dx_i = w_{g_i} (softmax(x_i) - onehot(y_i)),
// w_k = q_k / n_k (1/N for Mean).
//
// On CUDA: a row pass reads each row of logits once (online logsumexp, a warp per row) and writes
// l_i, logsumexp_i and per-block group partials; a one-block pass reduces the partials in a fixed
// order, updates q and forms the loss and w; the gradient pass recomputes softmax from the saved
// logsumexp (the logits are usually still in L2). No float atomics and no timing-dependent order
// anywhere, so every output is bit-identical run to run (ffr::settings().deterministic costs
// nothing here). Nothing is read back to the host.
//
// A sample whose label is not in [0, C) or whose group is not in [0, G) cannot be checked on the
// host without a synchronisation, so it is reported through the numbers instead: its l_i is NaN,
// it is left out of the group sums and counts, the loss and every dlogit become NaN, and the
// GroupDRO weights are left unchanged (so one bad batch cannot poison q).
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace ffr {

enum class GroupLoss : uint8_t { Mean, Weighted, GroupDRO };

struct GroupCrossEntropyConfig {
  GroupLoss mode = GroupLoss::Mean;
  // G. 0: q's length, or 1 when there is no q (Mean mode without groups).
  int64_t num_groups = 0;
  double step_size = 0.01;   // GroupDRO's eta
  double adjustment = 0.0;   // GroupDRO's generalisation adjustment C
  Tensor group_sizes;        // [G] train-split group sizes, needed when adjustment != 0
  // dlogits are the gradient of grad_scale * loss (the upstream gradient, e.g. a loss scale).
  double grad_scale = 1.0;
};

// Float outputs are float32 (float64 for float64 logits on the CPU); dlogits has the logits' dtype.
struct GroupCrossEntropyResult {
  Tensor loss;             // [] the weighted loss
  Tensor per_sample_loss;  // [N]
  Tensor group_loss_sum;   // [G] sum of l_i per group
  Tensor group_count;      // [G] int64, samples per group in this batch
  Tensor dlogits;          // [N, C]
};

// logits [N, C] (CPU: float32/float64; CUDA: float32/bfloat16), labels [N] int64, groups [N]
// int64 in [0, G) (may be undefined in Mean mode: one group), group_weights q [G] (float32, or
// float64 with float64 logits; may be undefined in Mean mode). In GroupDRO mode q is updated in
// place: it is the method's state, carried from batch to batch by the caller.
GroupCrossEntropyResult group_cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& groups,
                                            const Tensor& group_weights, const GroupCrossEntropyConfig& config);

// The same loss as a differentiable op: returns the scalar loss; backward gives dlogits scaled
// by the upstream gradient (recomputed from the saved logsumexp: N floats kept, not N x C).
// config.grad_scale must be 1 (the upstream gradient is the scale).
Tensor group_weighted_cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& groups,
                                    const Tensor& group_weights, const GroupCrossEntropyConfig& config);

// ---- launchers: raw buffers on one device. "acc" buffers are float32, or float64 for float64
// logits on the CPU. ----

struct GroupCrossEntropyForwardArgs {
  const void* logits = nullptr;  // [N, C]
  DType dtype = DType::Float32;
  const int64_t* labels = nullptr;  // [N]
  const int64_t* groups = nullptr;  // [N], or null: every sample in group 0
  int64_t rows = 0, classes = 0, num_groups = 1;
  GroupLoss mode = GroupLoss::Mean;
  double step_size = 0.0, adjustment = 0.0;
  void* group_weights = nullptr;        // acc [G]: read (Weighted), updated (GroupDRO), unused (Mean)
  const void* group_sizes = nullptr;    // acc [G], or null (no adjustment)
  void* per_sample_loss = nullptr;      // acc [N]
  void* log_sum_exp = nullptr;          // acc [N], for the gradient
  void* group_loss_sum = nullptr;       // acc [G]
  int64_t* group_count = nullptr;       // [G]
  void* loss = nullptr;                 // acc [1]
  void* sample_weight = nullptr;        // acc [G]: w_k, the loss's derivative w.r.t. l_i in group k
};

struct GroupCrossEntropyBackwardArgs {
  const void* logits = nullptr;
  DType dtype = DType::Float32;
  const int64_t* labels = nullptr;
  const int64_t* groups = nullptr;
  int64_t rows = 0, classes = 0, num_groups = 1;
  const void* log_sum_exp = nullptr;    // acc [N]
  const void* sample_weight = nullptr;  // acc [G]
  const void* upstream = nullptr;       // acc [1] upstream gradient on the device, or null (1)
  double scale = 1.0;
  void* dlogits = nullptr;              // [N, C], logits' dtype
};

// The per-batch step after the group sums, shared by the CPU reference and the CUDA kernel (one
// thread; G is small): GroupDRO's update of q, the loss and the per-group sample weights w_k.
template <typename T>
FFR_HOST_DEVICE void finalize_group_loss(GroupLoss mode, int64_t rows, int64_t num_groups, int64_t invalid,
                                         const T* group_sum, const int64_t* group_count, T step_size,
                                         T adjustment, const T* group_sizes, T* q, T* loss, T* sample_weight) {
  if (invalid > 0) {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    *loss = nan;
    for (int64_t k = 0; k < num_groups; ++k) sample_weight[k] = nan;
    return;
  }
  if (mode == GroupLoss::Mean) {
    const T w = rows > 0 ? T(1) / T(rows) : T(0);
    T total = 0;
    for (int64_t k = 0; k < num_groups; ++k) total += group_sum[k];
    *loss = total * w;
    for (int64_t k = 0; k < num_groups; ++k) sample_weight[k] = w;
    return;
  }
  if (mode == GroupLoss::GroupDRO) {
    T norm = 0;
    for (int64_t k = 0; k < num_groups; ++k) {
      if (group_count[k] > 0) {
        T adjusted = group_sum[k] / T(group_count[k]);
        if (group_sizes != nullptr) adjusted += adjustment / std::sqrt(group_sizes[k]);
        q[k] *= std::exp(step_size * adjusted);
      }
      norm += q[k];
    }
    for (int64_t k = 0; k < num_groups; ++k) q[k] /= norm;
  }
  T total = 0;
  for (int64_t k = 0; k < num_groups; ++k) {
    if (group_count[k] > 0) {
      total += q[k] * (group_sum[k] / T(group_count[k]));
      sample_weight[k] = q[k] / T(group_count[k]);
    } else {
      sample_weight[k] = 0;
    }
  }
  *loss = total;
}

void group_cross_entropy_forward_cpu(const GroupCrossEntropyForwardArgs& args);
void group_cross_entropy_forward_cuda(const GroupCrossEntropyForwardArgs& args);
void group_cross_entropy_backward_cpu(const GroupCrossEntropyBackwardArgs& args);
void group_cross_entropy_backward_cuda(const GroupCrossEntropyBackwardArgs& args);

}  // namespace ffr
