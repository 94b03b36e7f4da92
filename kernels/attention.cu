// Fused attention kernels for short heads (Dh <= 128), all math in float32 registers.
//
// Layout choices (ViT-B/32: T = 50, Dh = 64, B*H = 3072 independent problems):
// - Forward: a block per (batch-head, 16-query tile), a warp per 4 query rows, a lane per key of
//   a 32-key tile streamed through shared memory. The softmax is the online one (running max and
//   sum, rescaled per tile), so no [T, T] score matrix exists anywhere and T is not bounded by
//   shared memory. The row's logsumexp is saved for the backward.
// - Backward: rowsum(dout * out) per query first, then two kernels that each recompute P from the
//   logsumexp: dq with a block per query tile (looping over key tiles), dk/dv with a block per key
//   tile (looping over all queries). Every gradient element has one owner that sums in a fixed
//   order: deterministic, no atomics. The price is computing P twice, cheap at these sizes.
// - Tiles whose rows are read by lane (lane j reads row j) are padded to Dh + 1 floats, so the 32
//   lanes hit 32 different banks; rows read by the whole warp at once are broadcasts, unpadded.
// - Shared memory stays under the 48 KB a block gets without opting in, at Dh = 128.
#include "engine/cuda/context.h"
#include "engine/tensor.h"
#include "kernels/attention.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/fill.h"

#include <climits>

namespace ffr {

namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarp;
constexpr int kMaxDimsPerLane = int(kAttentionCudaMaxHeadDim) / kWarp;  // lane owns d = lane + 32 * i
constexpr int kKeyTile = kWarp;                                         // forward, dq: a lane per key
constexpr int kQueryTileForDkDv = kWarp;                                // dk/dv: a lane per query
constexpr int kForwardRowsPerWarp = 4;
constexpr int kForwardQueryTile = kWarps * kForwardRowsPerWarp;
// Two rows a warp in the backward: its blocks hold two padded 32-row tiles, which at Dh = 128
// leaves room for 8 owned rows under 48 KB.
constexpr int kBackwardRowsPerWarp = 2;
constexpr int kBackwardTile = kWarps * kBackwardRowsPerWarp;

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

__device__ __forceinline__ float dot(const float* a, const float* b, int n) {
  float s = 0.f;
  for (int d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

// Rows [first, first + count) of a [rows, dh] matrix into shared memory (row stride `stride`),
// zeros past the last row, so partial tiles need no special case in the math.
template <typename T>
__device__ void load_tile(float* tile, int stride, const T* src, int first, int count, int rows, int dh) {
  for (int e = threadIdx.x; e < count * dh; e += blockDim.x) {
    const int r = e / dh, d = e - r * dh;
    tile[r * stride + d] = first + r < rows ? cuda::to_float(src[int64_t(first + r) * dh + d]) : 0.f;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                             T* __restrict__ out, float* __restrict__ logsumexp, int tq, int tk, int dh, float scale) {
  extern __shared__ float smem[];
  float* q_tile = smem;                             // [kForwardQueryTile][dh]
  float* k_tile = q_tile + kForwardQueryTile * dh;  // [kKeyTile][dh + 1]
  float* v_tile = k_tile + kKeyTile * (dh + 1);     // [kKeyTile][dh]
  const int64_t bh = blockIdx.x;
  const int q0 = blockIdx.y * kForwardQueryTile;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const T* kb = k + bh * tk * dh;
  const T* vb = v + bh * tk * dh;
  load_tile(q_tile, dh, q + bh * tq * dh, q0, kForwardQueryTile, tq, dh);

  float row_max[kForwardRowsPerWarp], row_sum[kForwardRowsPerWarp], acc[kForwardRowsPerWarp][kMaxDimsPerLane];
#pragma unroll
  for (int rr = 0; rr < kForwardRowsPerWarp; ++rr) {
    row_max[rr] = -INFINITY;
    row_sum[rr] = 0.f;
#pragma unroll
    for (int dd = 0; dd < kMaxDimsPerLane; ++dd) acc[rr][dd] = 0.f;
  }

  for (int k0 = 0; k0 < tk; k0 += kKeyTile) {
    __syncthreads();  // everyone is done with the previous tile
    load_tile(k_tile, dh + 1, kb, k0, kKeyTile, tk, dh);
    load_tile(v_tile, dh, vb, k0, kKeyTile, tk, dh);
    __syncthreads();
    const int keys = min(kKeyTile, tk - k0);
#pragma unroll
    for (int rr = 0; rr < kForwardRowsPerWarp; ++rr) {
      const int row = warp * kForwardRowsPerWarp + rr;
      if (q0 + row >= tq) continue;  // uniform over the warp
      float s = dot(q_tile + row * dh, k_tile + lane * (dh + 1), dh) * scale;
      if (lane >= keys) s = -INFINITY;
      // The tile has at least one key, so new_max is finite; the first tile's rescale is exp(-inf) = 0.
      const float new_max = fmaxf(row_max[rr], warp_max(s));
      const float p = expf(s - new_max);
      const float rescale = expf(row_max[rr] - new_max);
      row_sum[rr] = row_sum[rr] * rescale + warp_sum(p);
#pragma unroll
      for (int dd = 0; dd < kMaxDimsPerLane; ++dd) acc[rr][dd] *= rescale;
      for (int j = 0; j < keys; ++j) {
        const float pj = __shfl_sync(kFullMask, p, j);
        const float* vr = v_tile + j * dh;
#pragma unroll
        for (int dd = 0; dd < kMaxDimsPerLane; ++dd) {
          const int d = lane + dd * kWarp;
          if (d < dh) acc[rr][dd] += pj * vr[d];
        }
      }
      row_max[rr] = new_max;
    }
  }

#pragma unroll
  for (int rr = 0; rr < kForwardRowsPerWarp; ++rr) {
    const int row = warp * kForwardRowsPerWarp + rr;
    if (q0 + row >= tq) continue;
    const int64_t r = bh * tq + q0 + row;
    const float inv_sum = 1.f / row_sum[rr];
#pragma unroll
    for (int dd = 0; dd < kMaxDimsPerLane; ++dd) {
      const int d = lane + dd * kWarp;
      if (d < dh) out[r * dh + d] = cuda::from_float<T>(acc[rr][dd] * inv_sum);
    }
    if (lane == 0) logsumexp[r] = row_max[rr] + logf(row_sum[rr]);
  }
}

// delta[r] = dout[r] . out[r] (= sum_j P_rj dP_rj): a warp per row.
template <typename T>
__global__ void attention_delta_kernel(const T* __restrict__ dout, const T* __restrict__ out, float* __restrict__ delta,
                                       int64_t rows, int dh) {
  const int lane = threadIdx.x % kWarp;
  for (int64_t r = blockIdx.x * int64_t(kWarps) + threadIdx.x / kWarp; r < rows; r += int64_t(gridDim.x) * kWarps) {
    float s = 0.f;
    for (int d = lane; d < dh; d += kWarp) s += cuda::to_float(dout[r * dh + d]) * cuda::to_float(out[r * dh + d]);
    s = warp_sum(s);
    if (lane == 0) delta[r] = s;
  }
}

// dq_i = scale * sum_j P_ij (dP_ij - delta_i) k_j: a block per query tile, a lane per key.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_backward_dq_kernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                                 const T* __restrict__ v, const float* __restrict__ logsumexp,
                                 const float* __restrict__ delta, T* __restrict__ dq, int tq, int tk, int dh,
                                 float scale) {
  extern __shared__ float smem[];
  float* q_tile = smem;                           // [kBackwardTile][dh]
  float* dout_tile = q_tile + kBackwardTile * dh;  // [kBackwardTile][dh]
  float* k_tile = dout_tile + kBackwardTile * dh;  // [kKeyTile][dh + 1]
  float* v_tile = k_tile + kKeyTile * (dh + 1);    // [kKeyTile][dh + 1]
  const int64_t bh = blockIdx.x;
  const int q0 = blockIdx.y * kBackwardTile;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const T* kb = k + bh * tk * dh;
  const T* vb = v + bh * tk * dh;
  load_tile(q_tile, dh, q + bh * tq * dh, q0, kBackwardTile, tq, dh);
  load_tile(dout_tile, dh, dout + bh * tq * dh, q0, kBackwardTile, tq, dh);

  float lse[kBackwardRowsPerWarp], row_delta[kBackwardRowsPerWarp], acc[kBackwardRowsPerWarp][kMaxDimsPerLane];
#pragma unroll
  for (int rr = 0; rr < kBackwardRowsPerWarp; ++rr) {
    const int i = q0 + warp * kBackwardRowsPerWarp + rr;
    lse[rr] = i < tq ? logsumexp[bh * tq + i] : 0.f;
    row_delta[rr] = i < tq ? delta[bh * tq + i] : 0.f;
#pragma unroll
    for (int dd = 0; dd < kMaxDimsPerLane; ++dd) acc[rr][dd] = 0.f;
  }

  for (int k0 = 0; k0 < tk; k0 += kKeyTile) {
    __syncthreads();
    load_tile(k_tile, dh + 1, kb, k0, kKeyTile, tk, dh);
    load_tile(v_tile, dh + 1, vb, k0, kKeyTile, tk, dh);
    __syncthreads();
    const int keys = min(kKeyTile, tk - k0);
#pragma unroll
    for (int rr = 0; rr < kBackwardRowsPerWarp; ++rr) {
      const int row = warp * kBackwardRowsPerWarp + rr;
      if (q0 + row >= tq) continue;  // uniform over the warp
      const float s = dot(q_tile + row * dh, k_tile + lane * (dh + 1), dh) * scale;
      const float dp = dot(dout_tile + row * dh, v_tile + lane * (dh + 1), dh);
      const float p = lane < keys ? expf(s - lse[rr]) : 0.f;
      const float ds = p * (dp - row_delta[rr]);
      for (int j = 0; j < keys; ++j) {
        const float dsj = __shfl_sync(kFullMask, ds, j);
        const float* kr = k_tile + j * (dh + 1);
#pragma unroll
        for (int dd = 0; dd < kMaxDimsPerLane; ++dd) {
          const int d = lane + dd * kWarp;
          if (d < dh) acc[rr][dd] += dsj * kr[d];
        }
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < kBackwardRowsPerWarp; ++rr) {
    const int row = warp * kBackwardRowsPerWarp + rr;
    if (q0 + row >= tq) continue;
    const int64_t r = bh * tq + q0 + row;
#pragma unroll
    for (int dd = 0; dd < kMaxDimsPerLane; ++dd) {
      const int d = lane + dd * kWarp;
      if (d < dh) dq[r * dh + d] = cuda::from_float<T>(acc[rr][dd] * scale);
    }
  }
}

// dv_j = sum_i P_ij dout_i and dk_j = scale * sum_i P_ij (dP_ij - delta_i) q_i: a block per key
// tile, looping over every query in order, a lane per query of a 32-query tile.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_backward_dkdv_kernel(const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                                   const T* __restrict__ v, const float* __restrict__ logsumexp,
                                   const float* __restrict__ delta, T* __restrict__ dk, T* __restrict__ dv, int tq,
                                   int tk, int dh, float scale) {
  extern __shared__ float smem[];
  float* k_tile = smem;                                    // [kBackwardTile][dh]
  float* v_tile = k_tile + kBackwardTile * dh;             // [kBackwardTile][dh]
  float* q_tile = v_tile + kBackwardTile * dh;             // [kQueryTileForDkDv][dh + 1]
  float* dout_tile = q_tile + kQueryTileForDkDv * (dh + 1);  // [kQueryTileForDkDv][dh + 1]
  float* lse_tile = dout_tile + kQueryTileForDkDv * (dh + 1);  // [kQueryTileForDkDv]
  float* delta_tile = lse_tile + kQueryTileForDkDv;            // [kQueryTileForDkDv]
  const int64_t bh = blockIdx.x;
  const int j0 = blockIdx.y * kBackwardTile;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const T* qb = q + bh * tq * dh;
  const T* dob = dout + bh * tq * dh;
  load_tile(k_tile, dh, k + bh * tk * dh, j0, kBackwardTile, tk, dh);
  load_tile(v_tile, dh, v + bh * tk * dh, j0, kBackwardTile, tk, dh);

  float dk_acc[kBackwardRowsPerWarp][kMaxDimsPerLane], dv_acc[kBackwardRowsPerWarp][kMaxDimsPerLane];
#pragma unroll
  for (int rr = 0; rr < kBackwardRowsPerWarp; ++rr) {
#pragma unroll
    for (int dd = 0; dd < kMaxDimsPerLane; ++dd) dk_acc[rr][dd] = dv_acc[rr][dd] = 0.f;
  }

  for (int i0 = 0; i0 < tq; i0 += kQueryTileForDkDv) {
    __syncthreads();
    load_tile(q_tile, dh + 1, qb, i0, kQueryTileForDkDv, tq, dh);
    load_tile(dout_tile, dh + 1, dob, i0, kQueryTileForDkDv, tq, dh);
    if (threadIdx.x < kQueryTileForDkDv) {
      const int i = i0 + threadIdx.x;
      lse_tile[threadIdx.x] = i < tq ? logsumexp[bh * tq + i] : 0.f;
      delta_tile[threadIdx.x] = i < tq ? delta[bh * tq + i] : 0.f;
    }
    __syncthreads();
    const int queries = min(kQueryTileForDkDv, tq - i0);
#pragma unroll
    for (int rr = 0; rr < kBackwardRowsPerWarp; ++rr) {
      const int row = warp * kBackwardRowsPerWarp + rr;
      if (j0 + row >= tk) continue;  // uniform over the warp
      const float s = dot(q_tile + lane * (dh + 1), k_tile + row * dh, dh) * scale;
      const float dp = dot(dout_tile + lane * (dh + 1), v_tile + row * dh, dh);
      const float p = lane < queries ? expf(s - lse_tile[lane]) : 0.f;
      const float ds = p * (dp - delta_tile[lane]);
      for (int i = 0; i < queries; ++i) {
        const float pi = __shfl_sync(kFullMask, p, i);
        const float dsi = __shfl_sync(kFullMask, ds, i);
        const float* qr = q_tile + i * (dh + 1);
        const float* dor = dout_tile + i * (dh + 1);
#pragma unroll
        for (int dd = 0; dd < kMaxDimsPerLane; ++dd) {
          const int d = lane + dd * kWarp;
          if (d < dh) {
            dv_acc[rr][dd] += pi * dor[d];
            dk_acc[rr][dd] += dsi * qr[d];
          }
        }
      }
    }
  }

#pragma unroll
  for (int rr = 0; rr < kBackwardRowsPerWarp; ++rr) {
    const int row = warp * kBackwardRowsPerWarp + rr;
    if (j0 + row >= tk) continue;
    const int64_t r = bh * tk + j0 + row;
#pragma unroll
    for (int dd = 0; dd < kMaxDimsPerLane; ++dd) {
      const int d = lane + dd * kWarp;
      if (d < dh) {
        dk[r * dh + d] = cuda::from_float<T>(dk_acc[rr][dd] * scale);
        dv[r * dh + d] = cuda::from_float<T>(dv_acc[rr][dd]);
      }
    }
  }
}

unsigned tiles(int64_t n, int tile) { return unsigned((n + tile - 1) / tile); }

void check_supported(const AttentionShape& s) {
  FFR_CHECK(s.head_dim >= 1 && s.key_len >= 1, "attention needs at least one key and a non-empty head");
  FFR_CHECK(s.head_dim <= kAttentionCudaMaxHeadDim, "attention on CUDA supports head sizes up to ",
            kAttentionCudaMaxHeadDim, ", got ", s.head_dim);
  FFR_CHECK(s.batch_heads <= INT_MAX && s.query_len <= INT_MAX / s.head_dim && s.key_len <= INT_MAX / s.head_dim,
            "attention on CUDA: sizes too large (", s.batch_heads, " batch-heads, ", s.query_len, " queries, ",
            s.key_len, " keys)");
  FFR_CHECK(tiles(s.query_len, kBackwardTile) <= 65535 && tiles(s.key_len, kBackwardTile) <= 65535,
            "attention on CUDA: sequences too long (", s.query_len, " queries, ", s.key_len, " keys)");
}

}  // namespace

void attention_forward_cuda(const void* q, const void* k, const void* v, void* out, void* logsumexp,
                            const AttentionShape& shape, DType dtype, double scale) {
  if (shape.batch_heads == 0 || shape.query_len == 0) return;
  check_supported(shape);
  const int tq = int(shape.query_len), tk = int(shape.key_len), dh = int(shape.head_dim);
  const dim3 grid(unsigned(shape.batch_heads), tiles(tq, kForwardQueryTile));
  const size_t smem = sizeof(float) * size_t(kForwardQueryTile * dh + kKeyTile * (dh + 1) + kKeyTile * dh);
  cuda::dispatch_floating(dtype, "scaled_dot_product_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    attention_forward_kernel<T><<<grid, kThreads, smem, cuda::stream()>>>(
        static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<T*>(out),
        static_cast<float*>(logsumexp), tq, tk, dh, float(scale));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void attention_backward_cuda(const void* dout, const void* q, const void* k, const void* v, const void* out,
                             const void* logsumexp, void* dq, void* dk, void* dv, const AttentionShape& shape,
                             DType dtype, double scale) {
  if (shape.batch_heads == 0) return;
  if (shape.query_len == 0) {  // no queries: dk and dv are empty sums
    fill_cuda(dk, shape.batch_heads * shape.key_len * shape.head_dim, dtype, 0.0);
    fill_cuda(dv, shape.batch_heads * shape.key_len * shape.head_dim, dtype, 0.0);
    return;
  }
  check_supported(shape);
  const int tq = int(shape.query_len), tk = int(shape.key_len), dh = int(shape.head_dim);
  const int64_t rows = shape.batch_heads * shape.query_len;
  Tensor delta = Tensor::empty({rows}, DType::Float32, Device::cuda(cuda::context().device));
  const size_t dq_smem = sizeof(float) * size_t(2 * kBackwardTile * dh + 2 * kKeyTile * (dh + 1));
  const size_t dkdv_smem =
      sizeof(float) * size_t(2 * kBackwardTile * dh + 2 * kQueryTileForDkDv * (dh + 1) + 2 * kQueryTileForDkDv);
  cuda::dispatch_floating(dtype, "scaled_dot_product_attention backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pdout = static_cast<const T*>(dout);
    const T* pq = static_cast<const T*>(q);
    const T* pk = static_cast<const T*>(k);
    const T* pv = static_cast<const T*>(v);
    const float* plse = static_cast<const float*>(logsumexp);
    attention_delta_kernel<T><<<cuda::blocks_for(rows, kWarps), kThreads, 0, cuda::stream()>>>(
        pdout, static_cast<const T*>(out), delta.data<float>(), rows, dh);
    FFR_CUDA_CHECK_LAUNCH();
    attention_backward_dq_kernel<T>
        <<<dim3(unsigned(shape.batch_heads), tiles(tq, kBackwardTile)), kThreads, dq_smem, cuda::stream()>>>(
            pdout, pq, pk, pv, plse, delta.data<float>(), static_cast<T*>(dq), tq, tk, dh, float(scale));
    FFR_CUDA_CHECK_LAUNCH();
    attention_backward_dkdv_kernel<T>
        <<<dim3(unsigned(shape.batch_heads), tiles(tk, kBackwardTile)), kThreads, dkdv_smem, cuda::stream()>>>(
            pdout, pq, pk, pv, plse, delta.data<float>(), static_cast<T*>(dk), static_cast<T*>(dv), tq, tk, dh,
            float(scale));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
