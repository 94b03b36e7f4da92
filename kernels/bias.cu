#include "engine/cuda/context.h"
#include "kernels/bias.h"
#include "kernels/cuda/dispatch.cuh"

#include <cstdint>

namespace ffr {

namespace {

constexpr int kThreads = 256;

// Columns across the threads of a block (blockIdx.x picks 256 of them), rows across blockIdx.y:
// each thread loads its bias once and walks its column down the rows; neighbouring threads touch
// neighbouring addresses. No division or modulo per element.
template <typename T>
__global__ void bias_add_kernel(const T* x, const T* bias, T* y, int64_t rows, int64_t columns) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= columns) return;
  const float b = cuda::to_float(bias[c]);
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int64_t at = r * columns + c;
    y[at] = cuda::from_float<T>(cuda::to_float(x[at]) + b);
  }
}

// The column sum. A block is 32 columns x 8 row lanes; block (bx, by) sums rows
// [by * slab, (by + 1) * slab) of columns [32 bx, 32 bx + 32): lane ty takes rows ty, ty + 8, ...
// of the slab, in order; the 8 lanes are then added in lane order through shared memory. A warp
// is one row lane over 32 neighbouring columns: its loads are coalesced.
constexpr int kColumnsPerBlock = 32;
constexpr int kRowLanes = 8;
constexpr int64_t kRowsPerSlab = 256;  // the slab: a fixed split of the rows, so sums are reproducible
constexpr int64_t kMaxSlabs = 65535;   // gridDim.y

int64_t slab_rows(int64_t rows) {
  const int64_t slabs = (rows + kRowsPerSlab - 1) / kRowsPerSlab;
  return slabs <= kMaxSlabs ? kRowsPerSlab : (rows + kMaxSlabs - 1) / kMaxSlabs;
}

template <typename T>
__global__ void column_partial_kernel(const T* x, float* partials, int64_t rows, int64_t columns, int64_t slab) {
  __shared__ float lanes[kRowLanes][kColumnsPerBlock];
  const int64_t c = blockIdx.x * int64_t(kColumnsPerBlock) + threadIdx.x;
  const int64_t begin = blockIdx.y * slab;
  const int64_t end = begin + slab < rows ? begin + slab : rows;
  float acc = 0.0f;
  if (c < columns) {
    for (int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) acc += cuda::to_float(x[r * columns + c]);
  }
  lanes[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < columns) {
    float sum = 0.0f;
    for (int lane = 0; lane < kRowLanes; ++lane) sum += lanes[lane][threadIdx.x];
    partials[blockIdx.y * columns + c] = sum;
  }
}

// Each column's partials added in slab order.
template <typename T>
__global__ void column_finish_kernel(const float* partials, T* out, int64_t slabs, int64_t columns) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= columns) return;
  float sum = 0.0f;
  for (int64_t s = 0; s < slabs; ++s) sum += partials[s * columns + c];
  out[c] = cuda::from_float<T>(sum);
}

}  // namespace

void bias_add_cuda(const void* x, const void* bias, void* y, int64_t rows, int64_t columns, DType dtype) {
  if (rows == 0 || columns == 0) return;
  cuda::dispatch_floating(dtype, "add_bias", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t column_blocks = (columns + kThreads - 1) / kThreads;
    FFR_CHECK(column_blocks <= 0x7fffffff, "add_bias: ", columns, " columns");
    // Enough row blocks to fill the GPU several times over; each walks rows gridDim.y apart.
    const int64_t row_blocks = rows < 1024 ? rows : 1024;
    const dim3 grid{unsigned(column_blocks), unsigned(row_blocks)};
    bias_add_kernel<T><<<grid, kThreads, 0, cuda::stream()>>>(static_cast<const T*>(x), static_cast<const T*>(bias),
                                                             static_cast<T*>(y), rows, columns);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

int64_t column_sum_cuda_slabs(int64_t rows) {
  if (rows == 0) return 1;
  const int64_t slab = slab_rows(rows);
  return (rows + slab - 1) / slab;
}

void column_sum_cuda(const void* x, void* out, float* partials, int64_t rows, int64_t columns, DType dtype) {
  if (columns == 0) return;
  cuda::dispatch_floating(dtype, "column_sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t slab = rows == 0 ? 1 : slab_rows(rows);
    const int64_t slabs = column_sum_cuda_slabs(rows);
    const int64_t column_blocks = (columns + kColumnsPerBlock - 1) / kColumnsPerBlock;
    FFR_CHECK(column_blocks <= 0x7fffffff, "column_sum: ", columns, " columns");
    if (rows == 0) {
      FFR_CUDA_CHECK(cudaMemsetAsync(partials, 0, size_t(columns) * sizeof(float), cuda::stream()));
    } else {
      const dim3 grid{unsigned(column_blocks), unsigned(slabs)}, block{kColumnsPerBlock, kRowLanes};
      column_partial_kernel<T><<<grid, block, 0, cuda::stream()>>>(static_cast<const T*>(x), partials, rows, columns,
                                                                   slab);
      FFR_CUDA_CHECK_LAUNCH();
    }
    column_finish_kernel<T><<<cuda::blocks_for(columns, kThreads), kThreads, 0, cuda::stream()>>>(
        partials, static_cast<T*>(out), slabs, columns);
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
