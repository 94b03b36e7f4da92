#include "engine/cuda/context.h"
#include "engine/tensor.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/fill.h"
#include "kernels/layer_norm.h"

#include <algorithm>
#include <climits>

namespace ffr {

namespace {

constexpr int kWarp = 32;
// One warp per row: a ViT row (D = 768) is 24 elements a lane, so the row's sums are warp
// shuffles with no shared memory or block barrier, and 8 independent rows share a block. Rows
// past D = 1024 still work (lanes stride over the row) but would be faster with a block per row.
constexpr int kRowsPerBlock = 8;
// dweight/dbias, stage 1: a thread per column over a chunk of rows (coalesced across columns).
constexpr int kColumnsPerBlock = 256;
constexpr int64_t kMinRowsPerChunk = 64;
constexpr int64_t kMaxChunks = 256;

// Butterfly sum: every lane ends with the same total, added in the same order every run.
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__global__ void layer_norm_forward_kernel(const T* __restrict__ x, const T* __restrict__ weight,
                                          const T* __restrict__ bias, T* __restrict__ y, float* __restrict__ mean,
                                          float* __restrict__ rstd, int64_t rows, int cols, float eps) {
  const int lane = threadIdx.x % kWarp;
  for (int64_t row = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarp; row < rows;
       row += int64_t(gridDim.x) * kRowsPerBlock) {
    const T* xr = x + row * cols;
    float s = 0.f;
    for (int c = lane; c < cols; c += kWarp) s += cuda::to_float(xr[c]);
    const float m = warp_sum(s) / float(cols);
    // Second pass over the row (it is in L1 by now) for the variance: no E[x^2] - E[x]^2
    // cancellation on rows with a large mean.
    float v = 0.f;
    for (int c = lane; c < cols; c += kWarp) {
      const float d = cuda::to_float(xr[c]) - m;
      v += d * d;
    }
    const float rs = rsqrtf(warp_sum(v) / float(cols) + eps);
    T* yr = y + row * cols;
    for (int c = lane; c < cols; c += kWarp) {
      float out = (cuda::to_float(xr[c]) - m) * rs;
      if (weight) out *= cuda::to_float(weight[c]);
      if (bias) out += cuda::to_float(bias[c]);
      yr[c] = cuda::from_float<T>(out);
    }
    if (lane == 0) {
      mean[row] = m;
      rstd[row] = rs;
    }
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * weight: a warp per row.
template <typename T>
__global__ void layer_norm_backward_dx_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                              const T* __restrict__ weight, const float* __restrict__ mean,
                                              const float* __restrict__ rstd, T* __restrict__ dx, int64_t rows,
                                              int cols) {
  const int lane = threadIdx.x % kWarp;
  for (int64_t row = blockIdx.x * int64_t(kRowsPerBlock) + threadIdx.x / kWarp; row < rows;
       row += int64_t(gridDim.x) * kRowsPerBlock) {
    const T* xr = x + row * cols;
    const T* dyr = dy + row * cols;
    const float m = mean[row], rs = rstd[row];
    float sum_g = 0.f, sum_g_xhat = 0.f;
    for (int c = lane; c < cols; c += kWarp) {
      const float g = cuda::to_float(dyr[c]) * (weight ? cuda::to_float(weight[c]) : 1.f);
      sum_g += g;
      sum_g_xhat += g * (cuda::to_float(xr[c]) - m) * rs;
    }
    const float mean_g = warp_sum(sum_g) / float(cols);
    const float mean_g_xhat = warp_sum(sum_g_xhat) / float(cols);
    T* dxr = dx + row * cols;
    for (int c = lane; c < cols; c += kWarp) {
      const float g = cuda::to_float(dyr[c]) * (weight ? cuda::to_float(weight[c]) : 1.f);
      const float xhat = (cuda::to_float(xr[c]) - m) * rs;
      dxr[c] = cuda::from_float<T>(rs * (g - mean_g - xhat * mean_g_xhat));
    }
  }
}

// Stage 1 of dweight/dbias: block (column tile, row chunk) writes the chunk's column sums of
// dy * xhat and dy. No atomics: each partial has exactly one writer.
template <typename T>
__global__ void layer_norm_param_partials_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                                 const float* __restrict__ mean, const float* __restrict__ rstd,
                                                 float* __restrict__ partial_weight, float* __restrict__ partial_bias,
                                                 int64_t rows, int cols, int64_t rows_per_chunk) {
  const int c = blockIdx.x * kColumnsPerBlock + threadIdx.x;
  if (c >= cols) return;
  const int64_t chunk = blockIdx.y;
  const int64_t begin = chunk * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
  float sum_w = 0.f, sum_b = 0.f;
  for (int64_t r = begin; r < end; ++r) {
    const float g = cuda::to_float(dy[r * cols + c]);
    sum_b += g;
    sum_w += g * (cuda::to_float(x[r * cols + c]) - mean[r]) * rstd[r];
  }
  if (partial_weight) partial_weight[chunk * cols + c] = sum_w;
  if (partial_bias) partial_bias[chunk * cols + c] = sum_b;
}

// Stage 2: out[c] = sum over chunks in chunk order (the fixed order makes it deterministic).
template <typename T>
__global__ void sum_chunks_kernel(const float* __restrict__ partial, T* __restrict__ out, int64_t chunks, int cols) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) {
    float s = 0.f;
    for (int64_t k = 0; k < chunks; ++k) s += partial[k * cols + c];
    out[c] = cuda::from_float<T>(s);
  }
}

unsigned row_blocks(int64_t rows) { return cuda::blocks_for(rows, kRowsPerBlock); }

}  // namespace

void layer_norm_forward_cuda(const void* x, const void* weight, const void* bias, void* y, void* mean, void* rstd,
                             int64_t rows, int64_t cols, DType dtype, double eps) {
  if (rows == 0) return;
  FFR_CHECK(cols <= INT_MAX, "layer_norm: rows of ", cols, " elements are too long");
  cuda::dispatch_floating(dtype, "layer_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    layer_norm_forward_kernel<T><<<row_blocks(rows), kRowsPerBlock * kWarp, 0, cuda::stream()>>>(
        static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<const T*>(bias), static_cast<T*>(y),
        static_cast<float*>(mean), static_cast<float*>(rstd), rows, int(cols), float(eps));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void layer_norm_backward_cuda(const void* dy, const void* x, const void* weight, const void* mean, const void* rstd,
                              void* dx, void* dweight, void* dbias, int64_t rows, int64_t cols, DType dtype) {
  FFR_CHECK(cols <= INT_MAX, "layer_norm: rows of ", cols, " elements are too long");
  if (rows == 0) {  // sums over no rows
    if (dweight) fill_cuda(dweight, cols, dtype, 0.0);
    if (dbias) fill_cuda(dbias, cols, dtype, 0.0);
    return;
  }
  cuda::dispatch_floating(dtype, "layer_norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pdy = static_cast<const T*>(dy);
    const T* px = static_cast<const T*>(x);
    const float* pmean = static_cast<const float*>(mean);
    const float* prstd = static_cast<const float*>(rstd);
    if (dx) {
      layer_norm_backward_dx_kernel<T><<<row_blocks(rows), kRowsPerBlock * kWarp, 0, cuda::stream()>>>(
          pdy, px, static_cast<const T*>(weight), pmean, prstd, static_cast<T*>(dx), rows, int(cols));
      FFR_CUDA_CHECK_LAUNCH();
    }
    if (!dweight && !dbias) return;
    // The chunking depends on the shape alone, so the summation order (and the result) is the
    // same on every run and every GPU.
    const int64_t rows_per_chunk = std::max(kMinRowsPerChunk, (rows + kMaxChunks - 1) / kMaxChunks);
    const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
    Tensor partials = Tensor::empty({2, chunks, cols}, DType::Float32, Device::cuda(cuda::context().device));
    float* partial_weight = dweight ? partials.data<float>() : nullptr;
    float* partial_bias = dbias ? partials.data<float>() + chunks * cols : nullptr;
    const dim3 grid(unsigned((cols + kColumnsPerBlock - 1) / kColumnsPerBlock), unsigned(chunks));
    layer_norm_param_partials_kernel<T><<<grid, kColumnsPerBlock, 0, cuda::stream()>>>(
        pdy, px, pmean, prstd, partial_weight, partial_bias, rows, int(cols), rows_per_chunk);
    FFR_CUDA_CHECK_LAUNCH();
    if (dweight) {
      sum_chunks_kernel<T><<<cuda::blocks_for(cols), 256, 0, cuda::stream()>>>(partial_weight,
                                                                               static_cast<T*>(dweight), chunks,
                                                                               int(cols));
      FFR_CUDA_CHECK_LAUNCH();
    }
    if (dbias) {
      sum_chunks_kernel<T><<<cuda::blocks_for(cols), 256, 0, cuda::stream()>>>(partial_bias, static_cast<T*>(dbias),
                                                                               chunks, int(cols));
      FFR_CUDA_CHECK_LAUNCH();
    }
  });
}

}  // namespace ffr
