// Pooling on CUDA (float32 and bfloat16, math in float32). Forward: a thread per output.
// Backward: a thread per INPUT position, summing the windows that cover it, in a fixed order:
// no atomics, so overlapping windows (ResNet's 3x3 stride-2 max pool) give bit-identical
// gradients run to run.
#include "engine/cuda/context.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/pooling.h"

#include <cmath>

namespace ffr {

namespace {

constexpr int kThreads = 256;

#define FFR_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <typename T>
__global__ void max_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int32_t* __restrict__ indices,
                                        Pool2dGeometry g, int64_t total) {
  const int64_t out_plane = g.out_height * g.out_width;
  FFR_GRID_STRIDE(o, total) {
    const int64_t p = o / out_plane, oh = (o % out_plane) / g.out_width, ow = o % g.out_width;
    const PoolWindow wh = pool_window(oh, g.stride_height, g.pad_height, g.kernel_height, g.in_height);
    const PoolWindow ww = pool_window(ow, g.stride_width, g.pad_width, g.kernel_width, g.in_width);
    const T* xp = x + p * g.in_height * g.in_width;
    float best = -INFINITY;
    int64_t best_at = wh.first * g.in_width + ww.first;
    for (int64_t h = wh.first; h < wh.last; ++h)
      for (int64_t w = ww.first; w < ww.last; ++w) {
        const float v = cuda::to_float(xp[h * g.in_width + w]);
        if (v > best || v != v) {  // v != v: NaN, which propagates as in PyTorch
          best = v;
          best_at = h * g.in_width + w;
        }
      }
    y[o] = cuda::from_float<T>(best);
    if (indices != nullptr) indices[o] = int32_t(best_at);
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(const T* __restrict__ dy, const int32_t* __restrict__ indices,
                                         T* __restrict__ dx, Pool2dGeometry g, int64_t total) {
  const int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  FFR_GRID_STRIDE(i, total) {
    const int64_t p = i / in_plane, h = (i % in_plane) / g.in_width, w = i % g.in_width;
    const int32_t here = int32_t(h * g.in_width + w);
    const PoolCover ch = pool_cover(h, g.stride_height, g.pad_height, g.kernel_height, g.out_height);
    const PoolCover cw = pool_cover(w, g.stride_width, g.pad_width, g.kernel_width, g.out_width);
    const int64_t base = p * out_plane;
    float acc = 0.f;
    for (int64_t oh = ch.first; oh < ch.last; ++oh)
      for (int64_t ow = cw.first; ow < cw.last; ++ow) {
        const int64_t o = base + oh * g.out_width + ow;
        if (indices[o] == here) acc += cuda::to_float(dy[o]);
      }
    dx[i] = cuda::from_float<T>(acc);
  }
}

template <typename T>
__global__ void avg_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y, Pool2dGeometry g, int64_t total,
                                        bool count_include_pad) {
  const int64_t out_plane = g.out_height * g.out_width;
  FFR_GRID_STRIDE(o, total) {
    const int64_t p = o / out_plane, oh = (o % out_plane) / g.out_width, ow = o % g.out_width;
    const PoolWindow wh = pool_window(oh, g.stride_height, g.pad_height, g.kernel_height, g.in_height);
    const PoolWindow ww = pool_window(ow, g.stride_width, g.pad_width, g.kernel_width, g.in_width);
    const T* xp = x + p * g.in_height * g.in_width;
    float sum = 0.f;
    for (int64_t h = wh.first; h < wh.last; ++h)
      for (int64_t w = ww.first; w < ww.last; ++w) sum += cuda::to_float(xp[h * g.in_width + w]);
    y[o] = cuda::from_float<T>(sum / float(avg_pool_divisor(wh, ww, count_include_pad)));
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, Pool2dGeometry g, int64_t total,
                                         bool count_include_pad) {
  const int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
  FFR_GRID_STRIDE(i, total) {
    const int64_t p = i / in_plane, h = (i % in_plane) / g.in_width, w = i % g.in_width;
    const PoolCover ch = pool_cover(h, g.stride_height, g.pad_height, g.kernel_height, g.out_height);
    const PoolCover cw = pool_cover(w, g.stride_width, g.pad_width, g.kernel_width, g.out_width);
    const T* dyp = dy + p * out_plane;
    float acc = 0.f;
    for (int64_t oh = ch.first; oh < ch.last; ++oh) {
      const PoolWindow wh = pool_window(oh, g.stride_height, g.pad_height, g.kernel_height, g.in_height);
      for (int64_t ow = cw.first; ow < cw.last; ++ow) {
        const PoolWindow ww = pool_window(ow, g.stride_width, g.pad_width, g.kernel_width, g.in_width);
        acc += cuda::to_float(dyp[oh * g.out_width + ow]) / float(avg_pool_divisor(wh, ww, count_include_pad));
      }
    }
    dx[i] = cuda::from_float<T>(acc);
  }
}

// A warp per row (one (n, c) plane): lanes stride the plane, then a shuffle tree of fixed shape.
template <typename T>
__global__ void global_avg_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                               int64_t spatial) {
  constexpr int kWarpsPerBlock = kThreads / 32;
  const int lane = threadIdx.x % 32;
  for (int64_t r = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32; r < rows;
       r += int64_t(gridDim.x) * kWarpsPerBlock) {
    const T* xr = x + r * spatial;
    float sum = 0.f;
    for (int64_t i = lane; i < spatial; i += 32) sum += cuda::to_float(xr[i]);
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) y[r] = cuda::from_float<T>(sum / float(spatial));
  }
}

template <typename T>
__global__ void global_avg_pool_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, int64_t total,
                                                int64_t spatial) {
  const float inv_spatial = 1.0f / float(spatial);
  FFR_GRID_STRIDE(i, total) { dx[i] = cuda::from_float<T>(cuda::to_float(dy[i / spatial]) * inv_spatial); }
}

#undef FFR_GRID_STRIDE

}  // namespace

void max_pool2d_forward_cuda(const void* x, void* y, int32_t* indices, DType dtype, const Pool2dGeometry& g) {
  const int64_t total = g.planes() * g.out_height * g.out_width;
  if (total == 0) return;
  cuda::dispatch_floating(dtype, "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_forward_kernel<T><<<cuda::blocks_for(total, kThreads), kThreads, 0, cuda::stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), indices, g, total);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void max_pool2d_backward_cuda(const void* dy, const int32_t* indices, void* dx, DType dtype, const Pool2dGeometry& g) {
  const int64_t total = g.planes() * g.in_height * g.in_width;
  if (total == 0) return;
  cuda::dispatch_floating(dtype, "max_pool2d backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_backward_kernel<T><<<cuda::blocks_for(total, kThreads), kThreads, 0, cuda::stream()>>>(
        static_cast<const T*>(dy), indices, static_cast<T*>(dx), g, total);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_forward_cuda(const void* x, void* y, DType dtype, const Pool2dGeometry& g, bool count_include_pad) {
  const int64_t total = g.planes() * g.out_height * g.out_width;
  if (total == 0) return;
  cuda::dispatch_floating(dtype, "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_forward_kernel<T><<<cuda::blocks_for(total, kThreads), kThreads, 0, cuda::stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), g, total, count_include_pad);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_backward_cuda(const void* dy, void* dx, DType dtype, const Pool2dGeometry& g, bool count_include_pad) {
  const int64_t total = g.planes() * g.in_height * g.in_width;
  if (total == 0) return;
  cuda::dispatch_floating(dtype, "avg_pool2d backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_backward_kernel<T><<<cuda::blocks_for(total, kThreads), kThreads, 0, cuda::stream()>>>(
        static_cast<const T*>(dy), static_cast<T*>(dx), g, total, count_include_pad);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void global_avg_pool2d_forward_cuda(const void* x, void* y, DType dtype, int64_t rows, int64_t spatial) {
  if (rows == 0) return;
  cuda::dispatch_floating(dtype, "global_avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const unsigned blocks = cuda::blocks_for(rows, kThreads / 32);
    global_avg_pool_forward_kernel<T><<<blocks, kThreads, 0, cuda::stream()>>>(static_cast<const T*>(x),
                                                                              static_cast<T*>(y), rows, spatial);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void global_avg_pool2d_backward_cuda(const void* dy, void* dx, DType dtype, int64_t rows, int64_t spatial) {
  const int64_t total = rows * spatial;
  if (total == 0) return;
  cuda::dispatch_floating(dtype, "global_avg_pool2d backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    global_avg_pool_backward_kernel<T><<<cuda::blocks_for(total, kThreads), kThreads, 0, cuda::stream()>>>(
        static_cast<const T*>(dy), static_cast<T*>(dx), total, spatial);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
