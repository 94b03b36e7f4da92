#include "engine/cuda/context.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/permute.h"

namespace ffr {

namespace {

constexpr int kBlock = 256;
constexpr int kTile = 32;
constexpr int kTileRows = 8;  // a 32x8 block moves a 32x32 tile, 4 elements per thread
// Below this many rows or columns most of a 32-wide tile would be idle; the index-mapping kernel
// (coalesced writes, cached strided reads) is then the better choice. Not tuned on hardware yet.
constexpr int64_t kMinTiledExtent = 16;

// One thread per output element: writes are coalesced, reads follow the permutation. Index is
// uint32_t when every offset fits, since 64-bit division costs several times more per dimension.
template <typename T, typename Index>
__global__ void permute_kernel(const T* __restrict__ in, T* __restrict__ out, PermuteIndexer idx) {
  const Index n = Index(idx.numel);
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
    Index linear = i, offset = 0;
#pragma unroll
    for (int d = kMaxPermuteDims - 1; d >= 0; --d) {
      if (d < idx.ndim) {
        const Index size = Index(idx.out_sizes[d]);
        offset += (linear % size) * Index(idx.in_strides[d]);
        linear /= size;
      }
    }
    out[i] = in[offset];
  }
}

// [batches, rows, cols] -> [batches, cols, rows] through a shared-memory tile, so both the read
// (along cols) and the write (along rows) are coalesced. The tile row is padded to 33 so that the
// column-wise read of the tile hits 32 different banks (4-byte elements; 2- and 8-byte elements
// see at most 2-way conflicts). Tiles are visited by a grid-stride loop: no grid-size limits.
template <typename T>
__global__ void transpose_tiled_kernel(const T* __restrict__ in, T* __restrict__ out, int64_t batches,
                                       int64_t rows, int64_t cols) {
  __shared__ T tile[kTile][kTile + 1];
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  const int64_t tiles_per_batch = row_tiles * col_tiles;
  const int64_t total = batches * tiles_per_batch;
  const int64_t matrix = rows * cols;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    const int64_t b = t / tiles_per_batch, within = t % tiles_per_batch;
    const int64_t r0 = (within / col_tiles) * kTile, c0 = (within % col_tiles) * kTile;
    const T* src = in + b * matrix;
    T* dst = out + b * matrix;
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const int64_t r = r0 + k, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[k][threadIdx.x] = src[r * cols + c];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const int64_t c = c0 + k, r = r0 + threadIdx.x;
      if (c < cols && r < rows) dst[c * rows + r] = tile[threadIdx.x][k];
    }
    __syncthreads();  // the next tile overwrites this one
  }
}

}  // namespace

void permute_cuda(const void* in, void* out, DType dtype, const PermuteIndexer& idx) {
  if (idx.numel == 0) return;
  if (idx.ndim == 1 && idx.in_strides[0] == 1) {  // the permutation only moved size-1 dims
    FFR_CUDA_CHECK(cudaMemcpyAsync(out, in, size_t(idx.numel) * dtype_size(dtype), cudaMemcpyDeviceToDevice,
                                   cuda::stream()));
    return;
  }
  dispatch_element_size(dtype, "permute", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pin = static_cast<const T*>(in);
    T* pout = static_cast<T*>(out);
    if (idx.is_batched_transpose()) {
      const int64_t batches = idx.ndim == 3 ? idx.out_sizes[0] : 1;
      const int64_t cols = idx.out_sizes[idx.ndim - 2], rows = idx.out_sizes[idx.ndim - 1];
      if (rows >= kMinTiledExtent && cols >= kMinTiledExtent) {
        const int64_t tiles = batches * ((rows + kTile - 1) / kTile) * ((cols + kTile - 1) / kTile);
        const unsigned grid = unsigned(tiles < 65535LL * 16 ? tiles : 65535LL * 16);
        transpose_tiled_kernel<T><<<grid, dim3(kTile, kTileRows), 0, cuda::stream()>>>(pin, pout, batches, rows,
                                                                                         cols);
        FFR_CUDA_CHECK_LAUNCH();
        return;
      }
    }
    if (idx.numel < (int64_t(1) << 31)) {
      permute_kernel<T, uint32_t><<<cuda::blocks_for(idx.numel, kBlock), kBlock, 0, cuda::stream()>>>(pin, pout, idx);
    } else {
      permute_kernel<T, int64_t><<<cuda::blocks_for(idx.numel, kBlock), kBlock, 0, cuda::stream()>>>(pin, pout, idx);
    }
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
