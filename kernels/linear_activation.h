// Linear's product, bias add and (for an MLP's first layer) GELU as one operation:
//   y = [gelu](x w^T + bias),  x [..., in], w [out, in], bias [out] or undefined.
//
// In inference (nothing needing a gradient) on the CPU in float32, a product large enough for
// oneDNN (kernels/onednn/matmul.h) takes the bias and GELU into its output pass, so the
// activations are written once instead of three times: in ViT-B/32 inference the separate
// bias add and GELU were ~10% of the time. Everywhere else (training, CUDA, float64, small
// products, no oneDNN) it is the composition matmul -> add_bias -> gelu, the reference the fused
// path is tested against (tests/linear_activation_test.cpp).
#pragma once

#include "engine/tensor.h"

namespace ffr {

Tensor linear_bias_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias, bool gelu);

// Whether linear_bias_gelu would run fused for these operands (for tests and profiles).
bool linear_bias_gelu_is_fused(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace ffr
