#include "engine/cuda/context.h"
#include "kernels/fused_adam.h"

#include <cstdint>

namespace ffr {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Multi-tensor apply: block b sweeps chunks b, b + grid, ... The update is memory-bound (4 loads,
// 3 stores per element), so aligned chunks move float4s; a chunk's unaligned tail (a tensor whose
// size is not a multiple of 4) or a misaligned view takes the scalar loop. The guard is read once
// per thread; the check that wrote it ran before on the same stream, so every thread sees one value.
__global__ void fused_adam_kernel(const AdamChunk* chunks, int64_t num_chunks, AdamStepCoefficients<float> c,
                                  const int64_t* skip_if_set) {
  if (skip_if_set != nullptr && *skip_if_set != kNoNonFinite) return;
  for (int64_t k = blockIdx.x; k < num_chunks; k += gridDim.x) {
    const AdamChunk chunk = chunks[k];
    float* p = static_cast<float*>(chunk.param);
    const float* g = static_cast<const float*>(chunk.grad);
    float* m = static_cast<float*>(chunk.exp_avg);
    float* v = static_cast<float*>(chunk.exp_avg_sq);
    int64_t vector_end = 0;
    if (aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v)) {
      vector_end = chunk.numel & ~int64_t(3);
      for (int64_t i = 4 * int64_t(threadIdx.x); i < vector_end; i += 4 * int64_t(blockDim.x)) {
        float4 pv = *reinterpret_cast<const float4*>(p + i);
        const float4 gv = *reinterpret_cast<const float4*>(g + i);
        float4 mv = *reinterpret_cast<const float4*>(m + i);
        float4 vv = *reinterpret_cast<const float4*>(v + i);
        adam_update_element<float>(pv.x, gv.x, mv.x, vv.x, c);
        adam_update_element<float>(pv.y, gv.y, mv.y, vv.y, c);
        adam_update_element<float>(pv.z, gv.z, mv.z, vv.z, c);
        adam_update_element<float>(pv.w, gv.w, mv.w, vv.w, c);
        *reinterpret_cast<float4*>(p + i) = pv;
        *reinterpret_cast<float4*>(m + i) = mv;
        *reinterpret_cast<float4*>(v + i) = vv;
      }
    }
    for (int64_t i = vector_end + threadIdx.x; i < chunk.numel; i += blockDim.x)
      adam_update_element<float>(p[i], g[i], m[i], v[i], c);
  }
}

}  // namespace

void fused_adam_cuda(const void* device_chunks, int64_t num_chunks, const AdamStepCoefficients<double>& coefficients,
                     const int64_t* skip_if_set) {
  if (num_chunks == 0) return;
  const unsigned grid = unsigned(num_chunks < 65535 * 8 ? num_chunks : 65535 * 8);
  fused_adam_kernel<<<grid, kThreads, 0, cuda::stream()>>>(static_cast<const AdamChunk*>(device_chunks), num_chunks,
                                                           cast_coefficients<float>(coefficients), skip_if_set);
  FFR_CUDA_CHECK_LAUNCH();
}

}  // namespace ffr
