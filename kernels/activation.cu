#include "engine/cuda/context.h"
#include "kernels/activation.h"
#include "kernels/activation_ops.h"
#include "kernels/cuda/dispatch.cuh"

namespace ffr {

namespace {

constexpr int kBlock = 256;

#define FFR_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <typename T>
__global__ void relu_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  FFR_GRID_STRIDE(i, n) y[i] = cuda::from_float<T>(relu_value<float>(cuda::to_float(x[i])));
}

template <typename T>
__global__ void gelu_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, GeluApproximation approx) {
  FFR_GRID_STRIDE(i, n) y[i] = cuda::from_float<T>(gelu_value<float>(cuda::to_float(x[i]), approx));
}

template <typename T>
__global__ void relu_backward_kernel(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dx,
                                     int64_t n) {
  FFR_GRID_STRIDE(i, n) dx[i] = cuda::from_float<T>(relu_grad<float>(cuda::to_float(dy[i]), cuda::to_float(y[i])));
}

template <typename T>
__global__ void gelu_backward_kernel(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx,
                                     int64_t n, GeluApproximation approx) {
  FFR_GRID_STRIDE(i, n)
  dx[i] = cuda::from_float<T>(gelu_grad<float>(cuda::to_float(dy[i]), cuda::to_float(x[i]), approx));
}

#undef FFR_GRID_STRIDE

}  // namespace

void relu_cuda(const void* x, void* y, int64_t n, DType dtype) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "relu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    relu_kernel<T><<<cuda::blocks_for(n, kBlock), kBlock, 0, cuda::stream()>>>(static_cast<const T*>(x),
                                                                              static_cast<T*>(y), n);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void gelu_cuda(const void* x, void* y, int64_t n, DType dtype, GeluApproximation approx) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "gelu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    gelu_kernel<T><<<cuda::blocks_for(n, kBlock), kBlock, 0, cuda::stream()>>>(static_cast<const T*>(x),
                                                                              static_cast<T*>(y), n, approx);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void relu_backward_cuda(const void* dy, const void* y, void* dx, int64_t n, DType dtype) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "relu backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    relu_backward_kernel<T><<<cuda::blocks_for(n, kBlock), kBlock, 0, cuda::stream()>>>(
        static_cast<const T*>(dy), static_cast<const T*>(y), static_cast<T*>(dx), n);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void gelu_backward_cuda(const void* dy, const void* x, void* dx, int64_t n, DType dtype, GeluApproximation approx) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "gelu backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    gelu_backward_kernel<T><<<cuda::blocks_for(n, kBlock), kBlock, 0, cuda::stream()>>>(
        static_cast<const T*>(dy), static_cast<const T*>(x), static_cast<T*>(dx), n, approx);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
