// float32 (batched) row-major GEMM through oneDNN's matmul primitive: the same GemmProblem that
// gemm_cpu takes (kernels/matmul.h), transposes and batch strides expressed as memory strides,
// a zero batch stride as a broadcast batch dimension. Primitives are cached per thread by problem.
#pragma once

#include "kernels/matmul.h"

namespace ffr::onednn {

// Whether oneDNN runs this problem (the float32 CPU dispatch in kernels/matmul.cpp asks): a
// dense output, and at least FFR_ONEDNN_MATMUL_MIN_MACS multiply-adds (default 2^25; smaller
// products stay on OpenBLAS, see matmul.cpp).
bool gemm_supported(const GemmProblem& p);

void gemm(const GemmProblem& p, const float* a, const float* b, float* c);

}  // namespace ffr::onednn
