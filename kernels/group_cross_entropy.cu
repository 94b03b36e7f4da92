#include "engine/cuda/context.h"
#include "engine/tensor.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/group_cross_entropy.h"

#include <algorithm>

namespace ffr {

namespace {

constexpr int kWarpSize = 32;
constexpr int kWarps = 8;  // rows in flight per block of the row pass
constexpr int kThreads = kWarps * kWarpSize;
// Row-pass blocks at most: bounds the partials the one-block pass reduces (<= 1024 per group).
constexpr int64_t kMaxRowBlocks = 1024;
// Per-block group sums live in shared memory (8 bytes a group).
constexpr int64_t kMaxGroups = 4096;

// Online logsumexp state (running max m, sum of exp(x - m)); -inf logits add nothing. NaN logits
// are flagged apart (the row's logsumexp becomes NaN), as the CPU reference does.
__device__ __forceinline__ void online_add(float& m, float& s, bool& nan, float x) {
  if (x != x) {
    nan = true;
    return;
  }
  if (x == -INFINITY) return;
  if (x > m) {
    s = s * expf(m - x) + 1.f;
    m = x;
  } else {
    s += expf(x - m);
  }
}

__device__ __forceinline__ void online_merge(float& m, float& s, float m2, float s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) {
    m = m2;
    s = s2;
    return;
  }
  const float mx = fmaxf(m, m2);
  s = s * expf(m - mx) + s2 * expf(m2 - mx);
  m = mx;
}

// A warp per row. Lane 0 of each warp leaves (l_i, group) in shared memory and thread 0 adds the
// block's rows in warp order, so a block's group sums never depend on timing. Blocks write their
// partials as [G][grid] for the one-block pass.
template <typename T>
__global__ void row_loss_kernel(const T* logits, const int64_t* labels, const int64_t* groups, int64_t rows,
                                int64_t classes, int64_t num_groups, float* per_sample_loss, float* log_sum_exp,
                                float* partial_sum, int* partial_count, int* partial_invalid) {
  extern __shared__ float block_sum[];  // [G], then the counts [G]
  int* block_count = reinterpret_cast<int*>(block_sum + num_groups);
  __shared__ float row_loss[kWarps];
  __shared__ int row_group[kWarps];  // >= 0: the group; -1: an invalid sample; -2: no row
  __shared__ int block_invalid;
  for (int64_t k = threadIdx.x; k < num_groups; k += blockDim.x) {
    block_sum[k] = 0.f;
    block_count[k] = 0;
  }
  if (threadIdx.x == 0) block_invalid = 0;
  __syncthreads();

  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  for (int64_t first = int64_t(blockIdx.x) * kWarps; first < rows; first += int64_t(gridDim.x) * kWarps) {
    const int64_t i = first + warp;
    if (i < rows) {
      const T* row = logits + i * classes;
      float m = -INFINITY, s = 0.f;
      bool nan = false;
      for (int64_t j = lane; j < classes; j += kWarpSize) online_add(m, s, nan, cuda::to_float(row[j]));
      // Butterfly: merge is commutative, so every lane ends with the same (m, s).
      for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        online_merge(m, s, m2, s2);
      }
      nan = __any_sync(0xffffffffu, nan);
      if (lane == 0) {
        const float lse = nan ? NAN : fabsf(m) == INFINITY ? m : m + logf(s);
        const int64_t y = labels[i];
        const int64_t g = groups != nullptr ? groups[i] : 0;
        const bool valid = y >= 0 && y < classes && g >= 0 && g < num_groups;
        const float loss = valid ? lse - cuda::to_float(row[y]) : NAN;
        per_sample_loss[i] = loss;
        log_sum_exp[i] = lse;
        row_loss[warp] = loss;
        row_group[warp] = valid ? int(g) : -1;
      }
    } else if (lane == 0) {
      row_group[warp] = -2;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 0; w < kWarps; ++w) {
        const int g = row_group[w];
        if (g >= 0) {
          block_sum[g] += row_loss[w];
          block_count[g] += 1;
        } else if (g == -1) {
          block_invalid += 1;
        }
      }
    }
    __syncthreads();
  }
  for (int64_t k = threadIdx.x; k < num_groups; k += blockDim.x) {
    partial_sum[k * gridDim.x + blockIdx.x] = block_sum[k];
    partial_count[k * gridDim.x + blockIdx.x] = block_count[k];
  }
  if (threadIdx.x == 0) partial_invalid[blockIdx.x] = block_invalid;
}

// One block: each group's partials reduced by strided sums and a fixed tree, then thread 0 runs
// the shared finalize (GroupDRO update, loss, sample weights).
__global__ void finalize_kernel(const float* partial_sum, const int* partial_count, const int* partial_invalid,
                                int num_partials, int64_t rows, int64_t num_groups, GroupLoss mode, float step_size,
                                float adjustment, const float* group_sizes, float* q, float* group_loss_sum,
                                int64_t* group_count, float* loss, float* sample_weight) {
  __shared__ float tree_sum[kThreads];
  __shared__ long long tree_count[kThreads];
  __shared__ long long invalid;
  for (int64_t k = -1; k < num_groups; ++k) {  // k = -1: the invalid-sample counter
    float s = 0.f;
    long long c = 0;
    for (int b = threadIdx.x; b < num_partials; b += blockDim.x) {
      if (k >= 0) {
        s += partial_sum[k * num_partials + b];
        c += partial_count[k * num_partials + b];
      } else {
        c += partial_invalid[b];
      }
    }
    tree_sum[threadIdx.x] = s;
    tree_count[threadIdx.x] = c;
    __syncthreads();
    for (int width = kThreads / 2; width > 0; width >>= 1) {
      if (threadIdx.x < width) {
        tree_sum[threadIdx.x] += tree_sum[threadIdx.x + width];
        tree_count[threadIdx.x] += tree_count[threadIdx.x + width];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (k >= 0) {
        group_loss_sum[k] = tree_sum[0];
        group_count[k] = int64_t(tree_count[0]);
      } else {
        invalid = tree_count[0];
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    finalize_group_loss<float>(mode, rows, num_groups, int64_t(invalid), group_loss_sum, group_count, step_size,
                               adjustment, group_sizes, q, loss, sample_weight);
  }
}

// dlogits[i, j] = upstream * scale * w_{g_i} * (exp(x_ij - lse_i) - [j == y_i]).
template <typename T>
__global__ void gradient_kernel(const T* logits, const int64_t* labels, const int64_t* groups, int64_t rows,
                                int64_t classes, int64_t num_groups, const float* log_sum_exp,
                                const float* sample_weight, const float* upstream, float scale, T* dlogits) {
  const float up = (upstream != nullptr ? *upstream : 1.f) * scale;
  const int64_t n = rows * classes;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = idx / classes, j = idx - i * classes;
    const int64_t y = labels[i];
    const int64_t g = groups != nullptr ? groups[i] : 0;
    const bool valid = y >= 0 && y < classes && g >= 0 && g < num_groups;
    const float w = valid ? sample_weight[g] * up : NAN;
    const float p = expf(cuda::to_float(logits[idx]) - log_sum_exp[i]);
    dlogits[idx] = cuda::from_float<T>(w * (p - (j == y ? 1.f : 0.f)));
  }
}

}  // namespace

void group_cross_entropy_forward_cuda(const GroupCrossEntropyForwardArgs& a) {
  FFR_CHECK(a.num_groups <= kMaxGroups, "group_cross_entropy on CUDA supports up to ", kMaxGroups, " groups, got ",
            a.num_groups);
  const Device device = Device::cuda(cuda::context().device);
  const int64_t blocks = std::min(std::max<int64_t>(1, (a.rows + kWarps - 1) / kWarps), kMaxRowBlocks);
  // Scratch from the caching allocator (stream-ordered reuse: no allocation in steady state).
  Tensor partial_sum = Tensor::empty({a.num_groups * blocks}, DType::Float32, device);
  Tensor partial_count = Tensor::empty({a.num_groups * blocks}, DType::Int32, device);
  Tensor partial_invalid = Tensor::empty({blocks}, DType::Int32, device);
  const size_t shared_bytes = size_t(a.num_groups) * (sizeof(float) + sizeof(int));
  cuda::dispatch_floating(a.dtype, "group_cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    row_loss_kernel<T><<<unsigned(blocks), kThreads, shared_bytes, cuda::stream()>>>(
        static_cast<const T*>(a.logits), a.labels, a.groups, a.rows, a.classes, a.num_groups,
        static_cast<float*>(a.per_sample_loss), static_cast<float*>(a.log_sum_exp), partial_sum.data<float>(),
        partial_count.data<int32_t>(), partial_invalid.data<int32_t>());
    FFR_CUDA_CHECK_LAUNCH();
  });
  finalize_kernel<<<1, kThreads, 0, cuda::stream()>>>(
      partial_sum.data<float>(), partial_count.data<int32_t>(), partial_invalid.data<int32_t>(), int(blocks), a.rows,
      a.num_groups, a.mode, float(a.step_size), float(a.adjustment), static_cast<const float*>(a.group_sizes),
      static_cast<float*>(a.group_weights), static_cast<float*>(a.group_loss_sum), a.group_count,
      static_cast<float*>(a.loss), static_cast<float*>(a.sample_weight));
  FFR_CUDA_CHECK_LAUNCH();
}

void group_cross_entropy_backward_cuda(const GroupCrossEntropyBackwardArgs& a) {
  const int64_t n = a.rows * a.classes;
  if (n == 0) return;
  cuda::dispatch_floating(a.dtype, "group_cross_entropy backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    gradient_kernel<T><<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(
        static_cast<const T*>(a.logits), a.labels, a.groups, a.rows, a.classes, a.num_groups,
        static_cast<const float*>(a.log_sum_exp), static_cast<const float*>(a.sample_weight),
        static_cast<const float*>(a.upstream), float(a.scale), static_cast<T*>(a.dlogits));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
