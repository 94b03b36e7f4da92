// Picks the C++ element type for a DType, so a kernel is written once as a template.
//   dispatch_cpu_floating(x.dtype(), "relu", [&](auto tag) { using T = typename decltype(tag)::type; ... });
// CPU ops run in float32 (the product) and float64 (gradient checks). CUDA ops: see
// kernels/cuda/dispatch.cuh (float32 and bfloat16).
#pragma once

#include "engine/dtype.h"
#include "engine/error.h"

#include <cstdint>

namespace ffr {

template <typename T>
struct TypeTag {
  using type = T;
};

template <typename F>
decltype(auto) dispatch_cpu_floating(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    default: FFR_FAIL(op, " on CPU supports float32 and float64, got ", dtype_name(dtype));
  }
}

template <typename F>
decltype(auto) dispatch_index(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::Int32: return f(TypeTag<int32_t>{});
    case DType::Int64: return f(TypeTag<int64_t>{});
    default: FFR_FAIL(op, " needs int32 or int64 indices, got ", dtype_name(dtype));
  }
}

// Data movement (permute, slice, concat, gather) copies elements without looking at them, so it
// serves every dtype by dispatching on the element's size alone.
template <typename F>
decltype(auto) dispatch_element_size(DType dtype, const char* op, F&& f) {
  switch (dtype_size(dtype)) {
    case 2: return f(TypeTag<uint16_t>{});
    case 4: return f(TypeTag<uint32_t>{});
    case 8: return f(TypeTag<uint64_t>{});
    default: FFR_FAIL(op, ": no copy for elements of ", dtype_size(dtype), " bytes (", dtype_name(dtype), ")");
  }
}

}  // namespace ffr
