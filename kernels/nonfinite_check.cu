#include "engine/cuda/context.h"
#include "kernels/nonfinite_check.h"

#include <cstdint>

namespace ffr {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// A 32-bit word holds one float32 or two bfloat16: test each element's exponent.
template <typename Bits>
__device__ __forceinline__ bool word_nonfinite(uint32_t w) {
  if constexpr (sizeof(Bits) == 2) {
    return nonfinite_bits<uint16_t>(uint16_t(w & 0xFFFFu)) | nonfinite_bits<uint16_t>(uint16_t(w >> 16));
  } else {
    return nonfinite_bits<uint32_t>(w);
  }
}

// This thread's share of one chunk. Read-only and memory-bound: aligned chunks move 16 bytes per
// load; a misaligned view or the tail (not a multiple of 16 bytes) takes the scalar loop. No
// early exit: every thread reads its share, the block ORs the answers once.
template <typename Bits>
__device__ bool thread_finds_nonfinite(const NonFiniteChunk& chunk) {
  constexpr int64_t kPerVector = 16 / sizeof(Bits);
  const Bits* x = static_cast<const Bits*>(chunk.data);
  bool found = false;
  int64_t vector_end = 0;
  if (aligned16(x)) {
    vector_end = chunk.numel / kPerVector * kPerVector;
    const uint4* v = reinterpret_cast<const uint4*>(x);
    for (int64_t i = threadIdx.x; i < vector_end / kPerVector; i += blockDim.x) {
      const uint4 w = v[i];
      found |= word_nonfinite<Bits>(w.x) | word_nonfinite<Bits>(w.y) | word_nonfinite<Bits>(w.z) |
               word_nonfinite<Bits>(w.w);
    }
  }
  for (int64_t i = vector_end + threadIdx.x; i < chunk.numel; i += blockDim.x) found |= nonfinite_bits<Bits>(x[i]);
  return found;
}

// Block b takes chunks b, b + grid, ... (one each unless there are more chunks than blocks);
// the by-value scalars come first, then the array. The array's chunks are in tensor order, so a
// block's first array chunk with a non-finite value is its smallest key there: it stops at it and
// does its atomicMin (a scalar's finding does its own, then goes on). Keys and kNoNonFinite are
// >= 0, so the unsigned 64-bit min is the signed one.
__global__ void first_nonfinite_kernel(const NonFiniteChunk* chunks, int64_t num_chunks, const NonFiniteScalars scalars,
                                       int64_t step_key, unsigned long long* status) {
  const int64_t total = scalars.count + num_chunks;
  for (int64_t k = blockIdx.x; k < total; k += gridDim.x) {
    const bool scalar = k < scalars.count;
    const NonFiniteChunk chunk = scalar ? scalars.chunks[k] : chunks[k - scalars.count];
    const bool found = chunk.dtype == DType::BFloat16 ? thread_finds_nonfinite<uint16_t>(chunk)
                                                      : thread_finds_nonfinite<uint32_t>(chunk);
    if (__syncthreads_or(found)) {  // the same answer in every thread: the break is uniform
      if (threadIdx.x == 0) atomicMin(status, (unsigned long long)(step_key + chunk.tensor_index));
      if (!scalar) break;
    }
  }
}

}  // namespace

void first_nonfinite_cuda(const void* device_chunks, int64_t num_chunks, const NonFiniteScalars& scalars, int64_t step,
                          int64_t* status) {
  const int64_t total = scalars.count + num_chunks;
  if (total == 0) return;
  static_assert(sizeof(unsigned long long) == sizeof(int64_t), "the int64 status is updated as unsigned long long");
  const unsigned grid = unsigned(total < 65535 * 8 ? total : 65535 * 8);
  first_nonfinite_kernel<<<grid, kThreads, 0, cuda::stream()>>>(static_cast<const NonFiniteChunk*>(device_chunks),
                                                                num_chunks, scalars, encode_nonfinite_key(step, 0),
                                                                reinterpret_cast<unsigned long long*>(status));
  FFR_CUDA_CHECK_LAUNCH();
}

}  // namespace ffr
