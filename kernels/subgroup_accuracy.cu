#include "engine/cuda/context.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/subgroup_accuracy.h"

#include <algorithm>

namespace ffr {

namespace {

constexpr int kWarpSize = 32;
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int64_t kMaxBlocks = 1024;
// Per-block counters live in shared memory (4 bytes each, 2G + 1 of them).
constexpr int64_t kMaxGroups = 4096;

// A warp per row: each lane scans its columns left to right, then a butterfly of argmax_better
// (symmetric, lowest index on ties) gives every lane the row's argmax. Counts go to shared
// memory first and to the global int64 counters once per block: integer adds, exact in any order.
template <typename T>
__global__ void subgroup_accuracy_kernel(const T* logits, const int64_t* labels, const int64_t* groups, int64_t rows,
                                         int64_t classes, int64_t num_groups, unsigned long long* counts) {
  extern __shared__ unsigned int block_counts[];  // [2G + 1], layout as the global counts
  const int64_t slots = 2 * num_groups + 1;
  for (int64_t k = threadIdx.x; k < slots; k += blockDim.x) block_counts[k] = 0;
  __syncthreads();

  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  for (int64_t i = int64_t(blockIdx.x) * kWarps + warp; i < rows; i += int64_t(gridDim.x) * kWarps) {
    const T* row = logits + i * classes;
    float best = 0.f;
    int64_t best_index = -1;  // -1: this lane has no column yet
    for (int64_t j = lane; j < classes; j += kWarpSize) {
      const float v = cuda::to_float(row[j]);
      if (best_index < 0 || argmax_better<float>(v, j, best, best_index)) {
        best = v;
        best_index = j;
      }
    }
    for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, best, offset);
      const long long other_index = __shfl_xor_sync(0xffffffffu, (long long)best_index, offset);
      if (other_index >= 0 && (best_index < 0 || argmax_better<float>(other, other_index, best, best_index))) {
        best = other;
        best_index = other_index;
      }
    }
    if (lane == 0) {
      const int64_t y = labels[i], g = groups[i];
      if (g < 0 || g >= num_groups || y < 0 || y >= classes) {
        atomicAdd(&block_counts[2 * num_groups], 1u);
      } else {
        if (best_index == y) atomicAdd(&block_counts[g], 1u);
        atomicAdd(&block_counts[num_groups + g], 1u);
      }
    }
  }
  __syncthreads();
  for (int64_t k = threadIdx.x; k < slots; k += blockDim.x) {
    if (block_counts[k] != 0) atomicAdd(&counts[k], (unsigned long long)block_counts[k]);
  }
}

}  // namespace

void subgroup_accuracy_cuda(const void* logits, DType dtype, const int64_t* labels, const int64_t* groups,
                            int64_t rows, int64_t classes, int64_t num_groups, int64_t* counts) {
  if (rows == 0) return;
  FFR_CHECK(num_groups <= kMaxGroups, "subgroup_accuracy on CUDA supports up to ", kMaxGroups, " groups, got ",
            num_groups);
  const int64_t blocks = std::min((rows + kWarps - 1) / kWarps, kMaxBlocks);
  const size_t shared_bytes = size_t(2 * num_groups + 1) * sizeof(unsigned int);
  static_assert(sizeof(unsigned long long) == sizeof(int64_t), "int64 counts are added as unsigned long long");
  cuda::dispatch_floating(dtype, "subgroup_accuracy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    subgroup_accuracy_kernel<T><<<unsigned(blocks), kThreads, shared_bytes, cuda::stream()>>>(
        static_cast<const T*>(logits), labels, groups, rows, classes, num_groups,
        reinterpret_cast<unsigned long long*>(counts));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
