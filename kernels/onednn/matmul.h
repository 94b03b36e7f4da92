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

// What the product gets before it is stored (kernels/linear_activation.h, inference): a bias row
// [n] added to every row of c, then GELU (erf form), both inside oneDNN's output pass.
struct GemmEpilogue {
  const float* bias = nullptr;
  bool gelu = false;
};

void gemm(const GemmProblem& p, const float* a, const float* b, float* c, const GemmEpilogue& epilogue = {});

}  // namespace ffr::onednn
