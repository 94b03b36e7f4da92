// float32 (batched) row-major GEMM through oneDNN's matmul primitive: the same GemmProblem that
// gemm_cpu takes (kernels/matmul.h), transposes and batch strides expressed as memory strides,
// a zero batch stride as a broadcast batch dimension. Primitives are cached per thread by problem.
#pragma once

#include "kernels/matmul.h"

namespace ffr::onednn {

// Whether oneDNN runs this problem (ffr::gemm_cpu's float32 path asks): stride layouts it can
// describe, and not switched off by FFR_ONEDNN_MATMUL=0 (read once, for A/B measurements).
bool gemm_supported(const GemmProblem& p);

void gemm(const GemmProblem& p, const float* a, const float* b, float* c);

}  // namespace ffr::onednn
