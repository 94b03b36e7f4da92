#include "engine/cuda/context.h"
#include "engine/settings.h"
#include "kernels/matmul.h"

namespace ffr {

// cuBLAS is column-major. A row-major [r,c] buffer is the column-major [c,r] matrix, its
// transpose, so the row-major C = op(A) op(B) is computed as the column-major
// C^T = op(B)^T op(A)^T: operands swapped, m and n swapped, transpose flags kept as they are.
void gemm_cuda(const GemmProblem& p, const void* a, const void* b, void* c, DType dtype) {
  if (p.m == 0 || p.n == 0 || p.batch == 0) return;
  cudaDataType_t data_type;
  cublasComputeType_t compute;
  switch (dtype) {
    case DType::Float32:
      data_type = CUDA_R_32F;
      compute = settings().allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      break;
    case DType::BFloat16:  // bf16 in and out, float32 accumulation
      data_type = CUDA_R_16BF;
      compute = CUBLAS_COMPUTE_32F;
      break;
    default: FFR_FAIL("matmul on CUDA supports float32 and bfloat16, got ", dtype_name(dtype));
  }
  cuda::Context& ctx = cuda::context();
  const size_t element = dtype_size(dtype);
  if (p.k == 0) {  // an empty sum: cuBLAS would scale c by beta, and c is uninitialised
    for (int64_t i = 0; i < p.batch; ++i)
      FFR_CUDA_CHECK(cudaMemsetAsync(static_cast<char*>(c) + size_t(i * p.stride_c) * element, 0,
                                     size_t(p.m * p.n) * element, ctx.stream));
    return;
  }
  const int m = int(p.m), n = int(p.n), k = int(p.k);
  const int lda = p.transpose_a ? m : k;  // row-major leading dimension = stored column count
  const int ldb = p.transpose_b ? k : n;
  const cublasOperation_t ta = p.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = p.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const float alpha = 1.0f, beta = 0.0f;  // host pointer mode; float for a 32F compute type
  if (p.batch == 1) {
    FFR_CUBLAS_CHECK(cublasGemmEx(ctx.cublas, tb, ta, n, m, k, &alpha, b, data_type, ldb, a, data_type, lda,
                                  &beta, c, data_type, n, compute, CUBLAS_GEMM_DEFAULT));
  } else {
    FFR_CUBLAS_CHECK(cublasGemmStridedBatchedEx(ctx.cublas, tb, ta, n, m, k, &alpha, b, data_type, ldb,
                                                p.stride_b, a, data_type, lda, p.stride_a, &beta, c, data_type,
                                                n, p.stride_c, int(p.batch), compute, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace ffr
