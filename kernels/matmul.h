// Matrix products: matmul (2-D, or leading batch dims times a 2-D matrix, as Linear needs) and
// bmm (batched). Row-major throughout; transpose flags read a stored [K,M] / [N,K] operand as its
// transpose without copying it. Differentiable in both operands; the backward products reuse the
// same GEMM with transpose flags, so no transposed copy is ever made.
//
// CPU: OpenBLAS (float32, float64). CUDA: cuBLAS with float32 (TF32 tensor cores when
// settings().allow_tf32) or bfloat16 operands, always accumulating in float32. Under
// settings().bfloat16_compute (Precision::BFloat16) float32 operands run as bf16 (kernels/bfloat16_compute.h).
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

// a [M,K] (or [K,M] with transpose_a) times b [K,N] (or [N,K] with transpose_b) -> [M,N].
// a may also be [..., K] (leading dims flattened into M, transpose_a not allowed) -> [..., N].
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// a [B,M,K] (or [B,K,M]) times b [B,K,N] (or [B,N,K]) -> [B,M,N].
Tensor bmm(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// One (batched) row-major GEMM on raw buffers of `dtype`:
//   c[i] = op(a[i]) op(b[i]) for i < batch, with op(a[i]) [m,k], op(b[i]) [k,n], c[i] [m,n],
// a[i] = a + i * stride_a (elements; stride 0 shares one matrix across the batch), etc.
// k == 0 writes zeros. CPU: float32/float64; CUDA: float32/bfloat16.
struct GemmProblem {
  int64_t batch = 1;
  int64_t m = 0, n = 0, k = 0;
  bool transpose_a = false, transpose_b = false;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

void gemm_cpu(const GemmProblem& p, const void* a, const void* b, void* c, DType dtype);
void gemm_cuda(const GemmProblem& p, const void* a, const void* b, void* c, DType dtype);

}  // namespace ffr
