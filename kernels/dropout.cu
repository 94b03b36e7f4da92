#include "engine/cuda/context.h"
#include "engine/rng.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/dropout.h"

namespace ffr {

namespace {

// A thread per Philox block: one philox4x32 call yields the words of 4 consecutive elements,
// where philox_word would run the whole block once per element. The counter layout is
// philox_word's (block = word / 4, lane = word % 4); the CPU reference calls philox_word itself,
// and the CUDA-vs-CPU test checks that both drop the same elements.
template <typename T>
__global__ void dropout_kernel(const T* in, T* out, int64_t n, PhiloxPosition at, float p, float scale) {
  const uint64_t first_block = at.offset >> 2;
  const uint64_t blocks = ((at.offset + uint64_t(n) + 3) >> 2) - first_block;
  const uint32_t key[2] = {uint32_t(at.seed), uint32_t(at.seed >> 32)};
  for (uint64_t g = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; g < blocks;
       g += uint64_t(gridDim.x) * blockDim.x) {
    const uint64_t block = first_block + g;
    const uint32_t counter[4] = {uint32_t(block), uint32_t(block >> 32), uint32_t(at.stream),
                                 uint32_t(at.stream >> 32)};
    uint32_t words[4];
    philox4x32(counter, key, words);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t word = block * 4 + uint64_t(lane);
      if (word < at.offset || word - at.offset >= uint64_t(n)) continue;
      const uint64_t i = word - at.offset;
      out[i] = dropout_keeps(words[lane], p) ? cuda::from_float<T>(cuda::to_float(in[i]) * scale)
                                             : cuda::from_float<T>(0.f);
    }
  }
}

}  // namespace

void dropout_apply_cuda(const void* in, void* out, int64_t n, DType dtype, PhiloxPosition at, double p) {
  if (n == 0) return;
  const int64_t philox_blocks = int64_t(((at.offset + uint64_t(n) + 3) >> 2) - (at.offset >> 2));
  cuda::dispatch_floating(dtype, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dropout_kernel<T><<<cuda::blocks_for(philox_blocks), 256, 0, cuda::stream()>>>(
        static_cast<const T*>(in), static_cast<T*>(out), n, at, float(p), float(1.0 / (1.0 - p)));
    FFR_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace ffr
