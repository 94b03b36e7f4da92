// Activation functions: ReLU (ResNet) and GELU (ViT), with their backward launchers exposed for
// layers that fuse an activation into a bigger kernel. The scalar math lives in
// kernels/activation_ops.h, shared by the CPU reference and the CUDA kernels.
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

enum class GeluApproximation : uint8_t {
  None,  // x * Phi(x) with erf: PyTorch's default and timm's ViT
  Tanh,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): GPT-2 / BERT style
};

// max(x, 0); NaN propagates. The gradient comes from the saved output: dy where y > 0, else 0
// (0 at x = 0, as PyTorch).
Tensor relu(const Tensor& x);
// The gradient is the exact derivative of the chosen form (not of the erf form for Tanh).
Tensor gelu(const Tensor& x, GeluApproximation approx = GeluApproximation::None);

// Launchers over n contiguous elements of `dtype` (CPU: float32/float64; CUDA: float32/bfloat16).
void relu_cpu(const void* x, void* y, int64_t n, DType dtype);
void relu_cuda(const void* x, void* y, int64_t n, DType dtype);
void gelu_cpu(const void* x, void* y, int64_t n, DType dtype, GeluApproximation approx);
void gelu_cuda(const void* x, void* y, int64_t n, DType dtype, GeluApproximation approx);
// dx = dy * (y > 0), from relu's output y.
void relu_backward_cpu(const void* dy, const void* y, void* dx, int64_t n, DType dtype);
void relu_backward_cuda(const void* dy, const void* y, void* dx, int64_t n, DType dtype);
// dx = dy * gelu'(x), from gelu's input x.
void gelu_backward_cpu(const void* dy, const void* x, void* dx, int64_t n, DType dtype, GeluApproximation approx);
void gelu_backward_cuda(const void* dy, const void* x, void* dx, int64_t n, DType dtype, GeluApproximation approx);

}  // namespace ffr
