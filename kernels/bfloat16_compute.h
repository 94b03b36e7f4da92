// bf16 mixed precision for the GEMM-based ops (matmul, bmm, conv2d): under
// settings().bfloat16_compute a float32 op runs as tensor cores run it with autocast: inputs
// rounded to bfloat16, products accumulated in float32, the result rounded to bfloat16 and handed
// back as float32, so everything around the op (weights, gradients, Adam, norms, softmax, loss)
// stays float32.
//
// CUDA: the kernels get bfloat16 buffers (cuBLAS CUDA_R_16BF / cuDNN bf16 data, float32 compute)
// and the bf16 result is upcast. CPU: the float32 kernels get float32 copies of the inputs rounded
// to bfloat16, and the result is rounded in place: the same numbers up to summation order, which
// is what lets the CPU tests check the bf16 path.
#pragma once

#include "engine/tensor.h"

namespace ffr {

// Whether an op with this float32 (or other) operand computes in bfloat16 now.
bool uses_bfloat16_compute(const Tensor& x);

// `a` op `b` -> out_shape through `kernel(a', b', out')`, which fills out' (allocated here, in the
// dtype the operands a', b' have). Not differentiable: the callers record their own backward.
template <typename Kernel>
Tensor run_in_bfloat16(const Tensor& a, const Tensor& b, const Shape& out_shape, Kernel&& kernel);

// The kernel operand for x: a bfloat16 copy on CUDA, a bf16-rounded float32 copy on the CPU.
Tensor bfloat16_operand(const Tensor& x);
// The kernel's result as float32: upcast (CUDA, bfloat16) or rounded to bf16 in place (CPU).
Tensor bfloat16_result_as_float32(Tensor y);

template <typename Kernel>
Tensor run_in_bfloat16(const Tensor& a, const Tensor& b, const Shape& out_shape, Kernel&& kernel) {
  const Tensor a16 = bfloat16_operand(a), b16 = bfloat16_operand(b);
  Tensor out = Tensor::empty(out_shape, a16.dtype(), a16.device());
  kernel(a16, b16, out);
  return bfloat16_result_as_float32(out);
}

}  // namespace ffr
