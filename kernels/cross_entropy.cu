#include "engine/cuda/context.h"
#include "kernels/cross_entropy.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/online_softmax.cuh"

namespace ffr {

namespace {

// A row per warp up to kWarpMaxClasses (<= 32 logits per lane, 4 rows per block), a row per block
// beyond (e.g. 21k classes). The row is read once, with the online (max, sum) normaliser.
constexpr int64_t kWarpMaxClasses = 1024;
constexpr int kWarpTeamBlock = 128;
constexpr int kBlockTeam = 256;
constexpr int kBackwardBlock = 256;

// Labels outside [0, C) are clamped for the read and give a NaN loss (see cross_entropy.h).
template <typename L>
__device__ __forceinline__ bool label_in_range(L label, int64_t c) {
  return label >= 0 && int64_t(label) < c;
}

template <typename T, typename L, int kTeam>
__global__ void cross_entropy_forward_kernel(const T* logits, const L* labels, T* loss, float* lse, int64_t n,
                                             int64_t c) {
  const int teams_per_block = blockDim.x / kTeam;
  const int lane = threadIdx.x % kTeam;
  // Uniform across each team, so every member reaches the team's shuffles and barriers.
  for (int64_t row = int64_t(blockIdx.x) * teams_per_block + threadIdx.x / kTeam; row < n;
       row += int64_t(gridDim.x) * teams_per_block) {
    const T* xr = logits + row * c;
    cuda::MaxSum acc = cuda::max_sum_empty();
    for (int64_t j = lane; j < c; j += kTeam) acc = cuda::max_sum_add(acc, cuda::to_float(xr[j]));
    acc = cuda::team_reduce<kTeam>(acc);
    if (lane == 0) {
      const L label = labels[row];
      const bool valid = label_in_range(label, c);
      const float target = cuda::to_float(xr[valid ? int64_t(label) : 0]);
      const float log_sum = logf(acc.sum);
      lse[row] = acc.max + log_sum;
      // (max - target) + log_sum keeps the digits of a small loss (a confident right answer).
      loss[row] = cuda::from_float<T>(valid ? (acc.max - target) + log_sum : CUDART_NAN_F);
    }
  }
}

// Elementwise over [N,C]: dlogits = (exp(x - lse) - onehot) * upstream * scale. Each thread
// recomputes its probability from the saved per-row logsumexp, so no softmax is stored.
template <typename T, typename L>
__global__ void cross_entropy_backward_kernel(const T* logits, const L* labels, const float* lse, const T* grad_loss,
                                              int64_t grad_stride, float scale, T* grad_logits, int64_t n, int64_t c) {
  const int64_t total = n * c;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / c, j = i - row * c;
    const L label = labels[row];
    const float g = cuda::to_float(grad_loss[row * grad_stride]) * scale;
    const float p = expf(cuda::to_float(logits[i]) - lse[row]);
    const float onehot = j == int64_t(label) ? 1.0f : 0.0f;
    grad_logits[i] = cuda::from_float<T>(label_in_range(label, c) ? (p - onehot) * g : CUDART_NAN_F);
  }
}

}  // namespace

void cross_entropy_forward_cuda(const void* logits, const void* labels, void* loss, void* lse, DType dtype,
                                DType label_dtype, int64_t n, int64_t c) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(label_dtype, "cross_entropy", [&](auto label_tag) {
      using L = typename decltype(label_tag)::type;
      const T* px = static_cast<const T*>(logits);
      const L* pl = static_cast<const L*>(labels);
      T* ploss = static_cast<T*>(loss);
      float* plse = static_cast<float*>(lse);
      const cudaStream_t stream = cuda::stream();
      if (c <= kWarpMaxClasses) {
        cross_entropy_forward_kernel<T, L, 32>
            <<<cuda::blocks_for(n, kWarpTeamBlock / 32), kWarpTeamBlock, 0, stream>>>(px, pl, ploss, plse, n, c);
      } else {
        cross_entropy_forward_kernel<T, L, kBlockTeam>
            <<<cuda::blocks_for(n, 1), kBlockTeam, 0, stream>>>(px, pl, ploss, plse, n, c);
      }
      FFR_CUDA_CHECK_LAUNCH();
    });
  });
}

void cross_entropy_backward_cuda(const void* logits, const void* labels, const void* lse, const void* grad_loss,
                                 int64_t grad_stride, double scale, void* grad_logits, DType dtype,
                                 DType label_dtype, int64_t n, int64_t c) {
  if (n * c == 0) return;
  cuda::dispatch_floating(dtype, "cross_entropy backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(label_dtype, "cross_entropy backward", [&](auto label_tag) {
      using L = typename decltype(label_tag)::type;
      cross_entropy_backward_kernel<T, L><<<cuda::blocks_for(n * c, kBackwardBlock), kBackwardBlock, 0, cuda::stream()>>>(
          static_cast<const T*>(logits), static_cast<const L*>(labels), static_cast<const float*>(lse),
          static_cast<const T*>(grad_loss), grad_stride, float(scale), static_cast<T*>(grad_logits), n, c);
      FFR_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace ffr
