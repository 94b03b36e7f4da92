// batch_norm on CUDA: our own kernels (x float32 or bfloat16, per-channel buffers float32).
//
// Per-channel reductions (the batch statistics forward, sum(dy) and sum(dy xhat) backward) run
// in two launches: a grid of (channel, slice) blocks, each reducing a fixed contiguous slice of
// the channel's N*S values with a fixed-shape tree, then one thread per channel combining the
// slices in order. Slicing a channel keeps an H100 busy when C is small (64 channels of a
// ResNet stem would fill half the SMs at one block per channel), and since the slicing depends
// only on the shape, results are bit-identical run to run and on every GPU. Statistics use
// Welford's update (one read of x, no E[x^2] - E[x]^2 cancellation).
#include "engine/cuda/context.h"
#include "kernels/batch_norm.h"
#include "kernels/cuda/dispatch.cuh"

#include <algorithm>

namespace ffr {

namespace {

constexpr int kThreads = 256;
// About 8 blocks per SM on a 132-SM H100; more slices than this only add partials to combine.
constexpr int64_t kTargetBlocks = 1024;
constexpr int64_t kMinValuesPerBlock = 4096;
constexpr int64_t kMaxSlices = 64;

int64_t slices_per_channel(const BatchNormShape& s) {
  const int64_t by_occupancy = (kTargetBlocks + s.channels - 1) / s.channels;
  const int64_t by_work = (s.per_channel() + kMinValuesPerBlock - 1) / kMinValuesPerBlock;
  return std::max<int64_t>(1, std::min({by_occupancy, by_work, kMaxSlices}));
}

// Calls f(offset) for this thread's values of channel c among positions [begin, end) of the
// channel's N*S values (position j = n S + i lives at (n C + c) S + i), striding by the block.
// (n, i) advance by addition: no division per value.
template <typename F>
__device__ __forceinline__ void for_channel_slice(int64_t C, int64_t S, int64_t c, int64_t begin, int64_t end,
                                                  F&& f) {
  int64_t j = begin + threadIdx.x;
  if (j >= end) return;
  int64_t n = j / S, i = j - n * S;
  const int64_t step_n = kThreads / S, step_i = kThreads % S;
  for (; j < end; j += kThreads) {
    f((n * C + c) * S + i);
    n += step_n;
    i += step_i;
    if (i >= S) {
      i -= S;
      ++n;
    }
  }
}

// The channel of a grid-stride index over [N, C, S], advanced by addition (two divisions per
// thread instead of two per value).
struct ChannelCursor {
  int64_t c, i, step_c, step_i;
  __device__ ChannelCursor(int64_t index, int64_t step, int64_t C, int64_t S) {
    const int64_t row = index / S;
    i = index - row * S;
    c = row % C;
    step_i = step % S;
    step_c = (step / S) % C;
  }
  __device__ void advance(int64_t C, int64_t S) {
    i += step_i;
    int64_t carry = 0;
    if (i >= S) {
      i -= S;
      carry = 1;
    }
    c += step_c + carry;
    if (c >= C) c -= C;
  }
};

struct Welford {
  float count, mean, m2;
};

// Chan et al.'s combination of two partial (count, mean, M2) summaries.
__device__ __forceinline__ Welford combine(const Welford& a, const Welford& b) {
  const float count = a.count + b.count;
  if (count == 0.f) return a;
  const float delta = b.mean - a.mean;
  const float weight_b = b.count / count;
  return {count, a.mean + delta * weight_b, a.m2 + b.m2 + delta * delta * a.count * weight_b};
}

// ---- forward ----

// partial: [3][C][slices] = count, mean, M2 of each (channel, slice).
template <typename T>
__global__ void batch_stats_partial_kernel(const T* __restrict__ x, int64_t C, int64_t S, int64_t per_channel,
                                           int64_t slices, float* __restrict__ partial) {
  const int64_t c = blockIdx.x, slice = blockIdx.y;
  const int64_t begin = per_channel * slice / slices, end = per_channel * (slice + 1) / slices;
  Welford w{0.f, 0.f, 0.f};
  for_channel_slice(C, S, c, begin, end, [&](int64_t o) {
    const float v = cuda::to_float(x[o]);
    w.count += 1.f;
    const float delta = v - w.mean;
    w.mean += delta / w.count;
    w.m2 += delta * (v - w.mean);
  });
  __shared__ float counts[kThreads], means[kThreads], m2s[kThreads];
  counts[threadIdx.x] = w.count;
  means[threadIdx.x] = w.mean;
  m2s[threadIdx.x] = w.m2;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width >>= 1) {
    if (threadIdx.x < width) {
      const int other = threadIdx.x + width;
      const Welford merged = combine({counts[threadIdx.x], means[threadIdx.x], m2s[threadIdx.x]},
                                     {counts[other], means[other], m2s[other]});
      counts[threadIdx.x] = merged.count;
      means[threadIdx.x] = merged.mean;
      m2s[threadIdx.x] = merged.m2;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const int64_t at = c * slices + slice;
    partial[at] = counts[0];
    partial[C * slices + at] = means[0];
    partial[2 * C * slices + at] = m2s[0];
  }
}

// One thread per channel: combine the slices in order, then the running-stat update in place.
__global__ void batch_stats_finalize_kernel(const float* __restrict__ partial, int64_t C, int64_t slices,
                                            float momentum, float eps, float* __restrict__ mean,
                                            float* __restrict__ invstd, float* running_mean, float* running_var) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    Welford acc{0.f, 0.f, 0.f};
    for (int64_t k = 0; k < slices; ++k) {
      const int64_t at = c * slices + k;
      acc = combine(acc, {partial[at], partial[C * slices + at], partial[2 * C * slices + at]});
    }
    mean[c] = acc.mean;
    invstd[c] = 1.0f / sqrtf(acc.m2 / acc.count + eps);
    if (running_mean != nullptr) running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * acc.mean;
    if (running_var != nullptr)
      running_var[c] = (1.f - momentum) * running_var[c] + momentum * (acc.m2 / (acc.count - 1.f));
  }
}

__global__ void running_stats_kernel(int64_t C, float eps, const float* __restrict__ running_mean,
                                     const float* __restrict__ running_var, float* __restrict__ mean,
                                     float* __restrict__ invstd) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    mean[c] = running_mean[c];
    invstd[c] = 1.0f / sqrtf(running_var[c] + eps);
  }
}

template <typename T>
__global__ void normalize_kernel(const T* __restrict__ x, int64_t total, int64_t C, int64_t S,
                                 const float* __restrict__ mean, const float* __restrict__ invstd,
                                 const float* __restrict__ weight, const float* __restrict__ bias, T* __restrict__ y) {
  const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  if (start >= total) return;
  ChannelCursor at(start, step, C, S);
  for (int64_t o = start; o < total; o += step, at.advance(C, S)) {
    const int64_t c = at.c;
    const float scale = invstd[c] * (weight != nullptr ? weight[c] : 1.f);
    const float shift = bias != nullptr ? bias[c] : 0.f;
    y[o] = cuda::from_float<T>((cuda::to_float(x[o]) - mean[c]) * scale + shift);
  }
}

// ---- backward ----

// partial: [2][C][slices] = sum(dy), sum(dy xhat) of each (channel, slice).
template <typename T>
__global__ void backward_partial_kernel(const T* __restrict__ dy, const T* __restrict__ x, int64_t C, int64_t S,
                                        int64_t per_channel, int64_t slices, const float* __restrict__ mean,
                                        const float* __restrict__ invstd, float* __restrict__ partial) {
  const int64_t c = blockIdx.x, slice = blockIdx.y;
  const int64_t begin = per_channel * slice / slices, end = per_channel * (slice + 1) / slices;
  const float m = mean[c], is = invstd[c];
  float sum_dy = 0.f, sum_dy_xhat = 0.f;
  for_channel_slice(C, S, c, begin, end, [&](int64_t o) {
    const float g = cuda::to_float(dy[o]);
    sum_dy += g;
    sum_dy_xhat += g * (cuda::to_float(x[o]) - m) * is;
  });
  __shared__ float a[kThreads], b[kThreads];
  a[threadIdx.x] = sum_dy;
  b[threadIdx.x] = sum_dy_xhat;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width >>= 1) {
    if (threadIdx.x < width) {
      a[threadIdx.x] += a[threadIdx.x + width];
      b[threadIdx.x] += b[threadIdx.x + width];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partial[c * slices + slice] = a[0];
    partial[C * slices + c * slices + slice] = b[0];
  }
}

// sums: [2][C] = sum(dy), sum(dy xhat); also written to dbias / dweight when wanted.
__global__ void backward_finalize_kernel(const float* __restrict__ partial, int64_t C, int64_t slices,
                                         float* __restrict__ sums, float* dweight, float* dbias) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    float sum_dy = 0.f, sum_dy_xhat = 0.f;
    for (int64_t k = 0; k < slices; ++k) {
      sum_dy += partial[c * slices + k];
      sum_dy_xhat += partial[C * slices + c * slices + k];
    }
    sums[c] = sum_dy;
    sums[C + c] = sum_dy_xhat;
    if (dbias != nullptr) dbias[c] = sum_dy;
    if (dweight != nullptr) dweight[c] = sum_dy_xhat;
  }
}

// sums == nullptr: the statistics were constants (eval), so dx = weight invstd dy.
template <typename T>
__global__ void backward_input_kernel(const T* __restrict__ dy, const T* __restrict__ x, int64_t total, int64_t C,
                                      int64_t S, float inv_count, const float* __restrict__ mean,
                                      const float* __restrict__ invstd, const float* __restrict__ weight,
                                      const float* __restrict__ sums, T* __restrict__ dx) {
  const int64_t start = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  if (start >= total) return;
  ChannelCursor at(start, step, C, S);
  for (int64_t o = start; o < total; o += step, at.advance(C, S)) {
    const int64_t c = at.c;
    const float scale = invstd[c] * (weight != nullptr ? weight[c] : 1.f);
    float g = cuda::to_float(dy[o]);
    if (sums != nullptr) {
      const float xhat = (cuda::to_float(x[o]) - mean[c]) * invstd[c];
      g -= (sums[c] + xhat * sums[C + c]) * inv_count;
    }
    dx[o] = cuda::from_float<T>(scale * g);
  }
}

Tensor float_scratch(const Shape& shape) {
  return Tensor::empty(shape, DType::Float32, Device::cuda(cuda::context().device));
}

unsigned channel_blocks(int64_t C) { return cuda::blocks_for(C, 128); }

}  // namespace

void batch_norm_batch_stats_cuda(const void* x, DType x_dtype, const BatchNormShape& s, double momentum, double eps,
                                 void* mean, void* invstd, void* running_mean, void* running_var) {
  if (s.channels == 0) return;
  const int64_t slices = slices_per_channel(s);
  FFR_CHECK(s.channels <= INT32_MAX, "batch_norm: too many channels for one grid: ", s.channels);
  Tensor partial = float_scratch({3, s.channels, slices});
  cuda::dispatch_floating(x_dtype, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const dim3 grid(unsigned(s.channels), unsigned(slices));
    batch_stats_partial_kernel<T><<<grid, kThreads, 0, cuda::stream()>>>(
        static_cast<const T*>(x), s.channels, s.spatial, s.per_channel(), slices, partial.data<float>());
    FFR_CUDA_CHECK_LAUNCH();
  });
  batch_stats_finalize_kernel<<<channel_blocks(s.channels), 128, 0, cuda::stream()>>>(
      partial.data<float>(), s.channels, slices, float(momentum), float(eps), static_cast<float*>(mean),
      static_cast<float*>(invstd), static_cast<float*>(running_mean), static_cast<float*>(running_var));
  FFR_CUDA_CHECK_LAUNCH();
}

void batch_norm_running_stats_cuda(DType x_dtype, int64_t channels, double eps, const void* running_mean,
                                   const void* running_var, void* mean, void* invstd) {
  if (channels == 0) return;
  running_stats_kernel<<<channel_blocks(channels), 128, 0, cuda::stream()>>>(
      channels, float(eps), static_cast<const float*>(running_mean), static_cast<const float*>(running_var),
      static_cast<float*>(mean), static_cast<float*>(invstd));
  FFR_CUDA_CHECK_LAUNCH();
}

void batch_norm_normalize_cuda(const void* x, DType x_dtype, const BatchNormShape& s, const void* mean,
                               const void* invstd, const void* weight, const void* bias, void* y) {
  const int64_t total = s.batch * s.channels * s.spatial;
  if (total == 0) return;
  cuda::dispatch_floating(x_dtype, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    normalize_kernel<T><<<cuda::blocks_for(total), kThreads, 0, cuda::stream()>>>(
        static_cast<const T*>(x), total, s.channels, s.spatial, static_cast<const float*>(mean),
        static_cast<const float*>(invstd), static_cast<const float*>(weight), static_cast<const float*>(bias),
        static_cast<T*>(y));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void batch_norm_backward_cuda(const void* dy, const void* x, DType x_dtype, const BatchNormShape& s,
                              const void* mean, const void* invstd, const void* weight, bool batch_stats, void* dx,
                              void* dweight, void* dbias) {
  const int64_t total = s.batch * s.channels * s.spatial;
  if (s.channels == 0) return;
  // The reductions are needed for dweight / dbias, and for dx when the statistics depend on x.
  const bool reduce = dweight != nullptr || dbias != nullptr || (dx != nullptr && batch_stats);
  Tensor sums;
  cuda::dispatch_floating(x_dtype, "batch_norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (reduce) {
      const int64_t slices = slices_per_channel(s);
      Tensor partial = float_scratch({2, s.channels, slices});
      sums = float_scratch({2, s.channels});
      if (s.per_channel() > 0) {
        const dim3 grid(unsigned(s.channels), unsigned(slices));
        backward_partial_kernel<T><<<grid, kThreads, 0, cuda::stream()>>>(
            static_cast<const T*>(dy), static_cast<const T*>(x), s.channels, s.spatial, s.per_channel(), slices,
            static_cast<const float*>(mean), static_cast<const float*>(invstd), partial.data<float>());
        FFR_CUDA_CHECK_LAUNCH();
      } else {
        partial.zero_();
      }
      backward_finalize_kernel<<<channel_blocks(s.channels), 128, 0, cuda::stream()>>>(
          partial.data<float>(), s.channels, slices, sums.data<float>(), static_cast<float*>(dweight),
          static_cast<float*>(dbias));
      FFR_CUDA_CHECK_LAUNCH();
    }
    if (dx != nullptr && total > 0) {
      const float inv_count = 1.0f / float(s.per_channel());
      backward_input_kernel<T><<<cuda::blocks_for(total), kThreads, 0, cuda::stream()>>>(
          static_cast<const T*>(dy), static_cast<const T*>(x), total, s.channels, s.spatial, inv_count,
          static_cast<const float*>(mean), static_cast<const float*>(invstd), static_cast<const float*>(weight),
          batch_stats ? sums.data<float>() : nullptr, static_cast<T*>(dx));
      FFR_CUDA_CHECK_LAUNCH();
    }
  });
}

}  // namespace ffr
