#include "engine/cuda/context.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/reduce.h"

namespace ffr {

namespace {

constexpr int kBlock = 256;

// Many outputs with short reductions: a thread per output.
template <typename T>
__global__ void reduce_thread_per_output(const T* in, T* out, ReduceIndexer idx, float scale) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < idx.outputs; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = idx.base(o);
    float acc = 0.f;
    for (int64_t r = 0; r < idx.reduced; ++r) acc += cuda::to_float(in[base + idx.inner(r)]);
    out[o] = cuda::from_float<T>(acc * scale);
  }
}

// Long reductions: a block per output, strided partial sums then a fixed-shape tree, so the
// summation order (and the result) never depends on timing.
template <typename T>
__global__ void reduce_block_per_output(const T* in, T* out, ReduceIndexer idx, float scale) {
  __shared__ float partial[kBlock];
  for (int64_t o = blockIdx.x; o < idx.outputs; o += gridDim.x) {
    const int64_t base = idx.base(o);
    float acc = 0.f;
    for (int64_t r = threadIdx.x; r < idx.reduced; r += kBlock) acc += cuda::to_float(in[base + idx.inner(r)]);
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int width = kBlock / 2; width > 0; width >>= 1) {
      if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
      __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = cuda::from_float<T>(partial[0] * scale);
    __syncthreads();
  }
}

}  // namespace

void reduce_sum_cuda(const void* in, void* out, DType dtype, const ReduceIndexer& idx, double scale) {
  if (idx.outputs == 0) return;
  cuda::dispatch_floating(dtype, "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pin = static_cast<const T*>(in);
    T* pout = static_cast<T*>(out);
    if (idx.reduced < 64 && idx.outputs >= 1024) {
      reduce_thread_per_output<T><<<cuda::blocks_for(idx.outputs), kBlock, 0, cuda::stream()>>>(pin, pout, idx, float(scale));
    } else {
      const unsigned grid = unsigned(idx.outputs < 65535 * 8 ? idx.outputs : 65535 * 8);
      reduce_block_per_output<T><<<grid, kBlock, 0, cuda::stream()>>>(pin, pout, idx, float(scale));
    }
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
