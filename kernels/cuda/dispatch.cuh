// Element types of CUDA kernels: float32 and bfloat16 (math in float32 registers).
#pragma once

#include "engine/dtype.h"
#include "engine/error.h"
#include "kernels/dispatch.h"

#include <cuda_bf16.h>

namespace ffr::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(double v) { return float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

template <typename F>
decltype(auto) dispatch_floating(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::BFloat16: return f(TypeTag<__nv_bfloat16>{});
    default: FFR_FAIL(op, " on CUDA supports float32 and bfloat16, got ", dtype_name(dtype));
  }
}

}  // namespace ffr::cuda
