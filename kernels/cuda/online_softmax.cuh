// The softmax normaliser in one pass (Milakov & Gimelshein 2018, "Online normalizer calculation
// for softmax"): each thread keeps a running (max, sum of exp(x - max)); pairs merge by rescaling
// the smaller side's sum to the larger max. Reading a row once instead of twice (max, then sum)
// is what matters for these memory-bound kernels. Shared by softmax.cu and cross_entropy.cu.
//
// Reductions use xor butterflies and a fixed tree, and the merge is commutative bit for bit, so
// every lane ends with the same value and results do not vary run to run.
#pragma once

#include <cuda_runtime.h>
#include <math_constants.h>

namespace ffr::cuda {

constexpr unsigned kFullWarp = 0xffffffffu;

struct MaxSum {
  float max;
  float sum;
};

__device__ __forceinline__ MaxSum max_sum_empty() { return {-CUDART_INF_F, 0.0f}; }

// -inf entries add nothing (exp(-inf) = 0), and are skipped so that -inf - (-inf) never makes a
// NaN; a NaN entry is added and poisons the sum, as it should. A +inf entry poisons it too: its
// own term is exp(inf - inf) = NaN, as in the CPU reference and in max_sum_merge (without that,
// a column with one +inf came out [0, .., NaN, .., 0] instead of all NaN).
__device__ __forceinline__ MaxSum max_sum_add(MaxSum a, float x) {
  if (x > a.max) {
    a.sum = a.sum * expf(a.max - x) + (x == CUDART_INF_F ? CUDART_NAN_F : 1.0f);
    a.max = x;
  } else if (x != -CUDART_INF_F) {
    a.sum += expf(x - a.max);
  }
  return a;
}

__device__ __forceinline__ MaxSum max_sum_merge(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.max, b.max);
  if (m == -CUDART_INF_F) return max_sum_empty();
  return {m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}

__device__ __forceinline__ MaxSum warp_reduce(MaxSum v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const MaxSum other{__shfl_xor_sync(kFullWarp, v.max, offset), __shfl_xor_sync(kFullWarp, v.sum, offset)};
    v = max_sum_merge(v, other);
  }
  return v;
}

__device__ __forceinline__ float warp_reduce_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}

// Whole-block reductions (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` holds one entry per warp; the trailing barrier lets the caller reuse it.
__device__ __forceinline__ MaxSum block_reduce(MaxSum v, MaxSum* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_reduce(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < int(blockDim.x / 32) ? scratch[lane] : max_sum_empty();
  v = warp_reduce(v);
  __syncthreads();
  return v;
}

__device__ __forceinline__ float block_reduce_sum(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_reduce_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < int(blockDim.x / 32) ? scratch[lane] : 0.0f;
  v = warp_reduce_sum(v);
  __syncthreads();
  return v;
}

// A row's team of threads: a warp (kTeam == 32) or the whole block (kTeam == blockDim.x).
template <int kTeam>
__device__ __forceinline__ MaxSum team_reduce(MaxSum v) {
  if constexpr (kTeam == 32) {
    return warp_reduce(v);
  } else {
    __shared__ MaxSum scratch[32];
    return block_reduce(v, scratch);
  }
}

template <int kTeam>
__device__ __forceinline__ float team_reduce_sum(float v) {
  if constexpr (kTeam == 32) {
    return warp_reduce_sum(v);
  } else {
    __shared__ float scratch[32];
    return block_reduce_sum(v, scratch);
  }
}

}  // namespace ffr::cuda
