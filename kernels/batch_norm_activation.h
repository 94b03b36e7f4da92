// A ResNet block's eval-mode tail in one pass: y = [relu]( batch_norm_eval(x) [+ residual] ).
//
// Inference (eval mode, nothing needing a gradient) spends a pass over the activations on each of
// batch norm, the skip add and the ReLU; fused, x is read once and y written once, while the
// convolution's output is still in cache. This is the CPU part of ResNet inference that is ours
// (the convolutions are oneDNN's), and what the ResNet-50 batch-1 ratio to PyTorch turns on.
//
// Always correct: when anything needs a gradient, or off the CPU, the result is the composition
// of the differentiable ops (batch_norm, add, relu), so training and CUDA are unchanged. The
// fused CPU pass is checked against that composition (tests/batch_norm_activation_test.cpp).
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

// x [N, C, ...]; weight/bias [C] (either may be undefined: 1 and 0); running stats [C];
// residual undefined or x's shape. The statistics are the running ones (eval or frozen BN).
Tensor batch_norm_eval_add_relu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                const Tensor& running_mean, const Tensor& running_var, double eps,
                                const Tensor& residual, bool relu);

// The fused CPU pass over x viewed as [batch, channels, spatial]:
//   y = [relu](x * scale[c] + shift[c] [+ residual]).
// scale and shift are x's type (float or double); residual nullable; y may alias x or residual.
void batch_norm_eval_add_relu_cpu(const void* x, DType dtype, int64_t batch, int64_t channels, int64_t spatial,
                                  const void* scale, const void* shift, const void* residual, bool relu, void* y);

}  // namespace ffr
