// Element-type conversion (float32 <-> bfloat16 <-> float64, integers <-> floats).
#pragma once

#include "engine/dtype.h"
#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

void convert_cpu(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n);
void convert_cuda(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n);

// Differentiable: the gradient is converted back to the input's dtype.
Tensor to_dtype(const Tensor& x, DType dtype);

}  // namespace ffr
