#include "engine/cuda/context.h"
#include "engine/rng.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/fill.h"

namespace ffr {

namespace {

template <typename T>
__global__ void fill_kernel(T* data, int64_t n, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    data[i] = value;
}

template <typename T>
__global__ void uniform_kernel(T* data, int64_t n, PhiloxPosition at, float low, float span) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    // __fmul_rn/__fadd_rn: no FMA contraction, so the values equal the CPU's bit for bit.
    data[i] = cuda::from_float<T>(__fadd_rn(low, __fmul_rn(span, word_to_unit_float(philox_word(at.seed, at.stream, at.offset + uint64_t(i))))));
}

template <typename T>
__global__ void normal_kernel(T* data, int64_t n, PhiloxPosition at, float mean, float stddev) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t w = at.offset + 2 * uint64_t(i);
    data[i] = cuda::from_float<T>(mean + stddev * words_to_normal(philox_word(at.seed, at.stream, w),
                                                                  philox_word(at.seed, at.stream, w + 1)));
  }
}

template <typename T>
void launch_fill(void* data, int64_t n, T value) {
  fill_kernel<T><<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(static_cast<T*>(data), n, value);
  FFR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void fill_cuda(void* data, int64_t n, DType dtype, double value) {
  if (n == 0) return;
  switch (dtype) {
    case DType::Float32: return launch_fill<float>(data, n, float(value));
    case DType::Float64: return launch_fill<double>(data, n, value);
    case DType::BFloat16: return launch_fill<__nv_bfloat16>(data, n, __float2bfloat16(float(value)));
    case DType::Int32: return launch_fill<int32_t>(data, n, int32_t(value));
    case DType::Int64: return launch_fill<int64_t>(data, n, int64_t(value));
  }
}

void uniform_cuda(void* data, int64_t n, DType dtype, PhiloxPosition at, double low, double high) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "uniform", [&](auto tag) {
    using T = typename decltype(tag)::type;
    uniform_kernel<T><<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(static_cast<T*>(data), n, at, float(low),
                                                                        float(high - low));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void normal_cuda(void* data, int64_t n, DType dtype, PhiloxPosition at, double mean, double stddev) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "normal", [&](auto tag) {
    using T = typename decltype(tag)::type;
    normal_kernel<T><<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(static_cast<T*>(data), n, at, float(mean),
                                                                       float(stddev));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
