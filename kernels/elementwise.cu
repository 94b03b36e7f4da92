#include "engine/cuda/context.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/elementwise.h"
#include "kernels/elementwise_ops.h"

namespace ffr {

namespace {

// Same-shape inputs skip the index arithmetic (the common case inside layers).
template <typename T>
__global__ void binary_same_shape_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = cuda::from_float<T>(apply_binary<float>(op, cuda::to_float(a[i]), cuda::to_float(b[i])));
}

template <typename T>
__global__ void binary_broadcast_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n, BroadcastIndexer idx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t ia, ib;
    idx.offsets(i, ia, ib);
    out[i] = cuda::from_float<T>(apply_binary<float>(op, cuda::to_float(a[ia]), cuda::to_float(b[ib])));
  }
}

template <typename T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* out, int64_t n, float scalar) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = cuda::from_float<T>(apply_unary<float>(op, cuda::to_float(x[i]), scalar));
}

}  // namespace

void binary_cuda(BinaryOp op, const void* a, const void* b, void* out, int64_t n, DType dtype,
                 const BroadcastIndexer& idx, bool same_shape) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "binary op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    if (same_shape) {
      binary_same_shape_kernel<T><<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(op, pa, pb, po, n);
    } else {
      binary_broadcast_kernel<T><<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(op, pa, pb, po, n, idx);
    }
    FFR_CUDA_CHECK_LAUNCH();
  });
}

void unary_cuda(UnaryOp op, const void* x, void* out, int64_t n, DType dtype, double scalar) {
  if (n == 0) return;
  cuda::dispatch_floating(dtype, "unary op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    unary_kernel<T><<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(op, static_cast<const T*>(x),
                                                                      static_cast<T*>(out), n, float(scalar));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
