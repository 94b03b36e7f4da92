#include "engine/cuda/context.h"
#include "kernels/slice.h"

#include <cstdint>

namespace ffr {

namespace {

constexpr int kBlock = 256;

// One thread per word of the destination rows. Word is the widest type (up to uint4, 16 bytes)
// that divides a row and both pointers' alignment, so bf16 rows of 64 elements move as 8 uint4
// per row instead of 64 halves; Index is uint32_t when every offset fits (cheaper division).
template <typename Word, typename Index>
__global__ void copy_rows_kernel(const Word* __restrict__ src, Word* __restrict__ dst, RowCopy c) {
  const Index inner = Index(c.inner), count = Index(c.count);
  const Index n = Index(c.outer) * count * inner;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) {
    const Index k = i % inner, t = i / inner;
    const Index r = t % count, o = t / count;
    const Index src_row = o * Index(c.src_rows) + Index(c.src_start) + r * Index(c.src_step);
    const Index dst_row = o * Index(c.dst_rows) + Index(c.dst_start) + r * Index(c.dst_step);
    dst[dst_row * inner + k] = src[src_row * inner + k];
  }
}

template <typename Word>
void launch_copy_rows(const void* src, void* dst, RowCopy c) {
  c.inner /= int64_t(sizeof(Word));  // the launcher passed inner in bytes
  const int64_t words = c.outer * c.count * c.inner;
  const int64_t largest = c.outer * (c.src_rows > c.dst_rows ? c.src_rows : c.dst_rows) * c.inner;
  const Word* s = static_cast<const Word*>(src);
  Word* d = static_cast<Word*>(dst);
  if (largest < (int64_t(1) << 31)) {
    copy_rows_kernel<Word, uint32_t><<<cuda::blocks_for(words, kBlock), kBlock, 0, cuda::stream()>>>(s, d, c);
  } else {
    copy_rows_kernel<Word, int64_t><<<cuda::blocks_for(words, kBlock), kBlock, 0, cuda::stream()>>>(s, d, c);
  }
  FFR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void copy_rows_cuda(const void* src, void* dst, DType dtype, const RowCopy& copy) {
  const int64_t row_bytes = copy.inner * int64_t(dtype_size(dtype));
  if (copy.outer == 0 || copy.count == 0 || row_bytes == 0) return;
  // Every row starts at a multiple of row_bytes from the base pointers, so a word width that
  // divides row_bytes and both base addresses aligns every access.
  const uint64_t alignment = uint64_t(row_bytes) | reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst);
  RowCopy in_bytes = copy;
  in_bytes.inner = row_bytes;
  if (alignment % 16 == 0) {
    launch_copy_rows<uint4>(src, dst, in_bytes);
  } else if (alignment % 8 == 0) {
    launch_copy_rows<uint2>(src, dst, in_bytes);
  } else if (alignment % 4 == 0) {
    launch_copy_rows<uint32_t>(src, dst, in_bytes);
  } else {
    launch_copy_rows<uint16_t>(src, dst, in_bytes);
  }
}

}  // namespace ffr
