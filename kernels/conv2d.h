// 2-D convolution (cross-correlation, as every framework computes it) over NCHW tensors, with
// weights [Cout, Cin/groups, kH, kW]: torchvision's layout, so checkpoints move as they are.
//
// CPU: im2col + OpenBLAS GEMM per image and group (the reference, float32 and float64).
// CUDA: cuDNN's convolution API, float32 and bfloat16 (bf16 data, float32 accumulation); the
// algorithm is picked once per problem and cached per thread (kernels/conv2d.cu). Under
// settings().bfloat16_compute (Precision::BFloat16) float32 operands run as bf16 (kernels/bfloat16_compute.h).
#pragma once

#include "engine/tensor.h"

#include <array>
#include <cstdint>

namespace ffr {

struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1};    // (height, width)
  std::array<int64_t, 2> padding{0, 0};   // zeros on both sides
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};

// Every size a launcher needs, derived once from the shapes and the params.
struct Conv2dGeometry {
  int64_t batch = 0, in_channels = 0, in_height = 0, in_width = 0;
  int64_t out_channels = 0, kernel_height = 0, kernel_width = 0;
  int64_t out_height = 0, out_width = 0;
  int64_t stride_height = 1, stride_width = 1;
  int64_t pad_height = 0, pad_width = 0;
  int64_t dilation_height = 1, dilation_width = 1;
  int64_t groups = 1;

  int64_t in_channels_per_group() const { return in_channels / groups; }
  int64_t out_channels_per_group() const { return out_channels / groups; }
  Shape input_shape() const { return {batch, in_channels, in_height, in_width}; }
  Shape weight_shape() const { return {out_channels, in_channels / groups, kernel_height, kernel_width}; }
  Shape output_shape() const { return {batch, out_channels, out_height, out_width}; }
};

// Memory order of a CUDA convolution's tensors: NCHW (weights [Cout, Cin/groups, kH, kW], as
// torchvision) or channels-last NHWC (weights [Cout, kH, kW, Cin/groups]), which cuDNN's tensor
// core kernels read without transposing. The sizes in Conv2dGeometry stay N, C, H, W either way.
enum class ConvLayout : int8_t { NCHW, NHWC };

// Checks that x [N, Cin, H, W] and weight [Cout, Cin/groups, kH, kW] fit `p` (ffr::Error if not)
// and returns the geometry, with Hout = (H + 2 pad - dilation (k - 1) - 1) / stride + 1.
Conv2dGeometry conv2d_geometry(const Shape& x_shape, const Shape& weight_shape, const Conv2dParams& p);

// y[n, co] = bias[co] + sum over the group's input channels of weight[co] (x) x[n, ci].
// bias [Cout] may be undefined. Differentiable in x, weight and bias.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dParams p = {});

// The gradients w.r.t. the input and the weight (not differentiable themselves).
Tensor conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Conv2dGeometry& g);
Tensor conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Conv2dGeometry& g);

// Launchers over contiguous buffers of `dtype`; each overwrites its output.
//   forward:         y  = conv(x, w)
//   backward_input:  dx = conv_transpose(dy, w)
//   backward_weight: dw = sum over the batch of correlate(dy, x)
void conv2d_forward_cpu(const void* x, const void* w, void* y, DType dtype, const Conv2dGeometry& g);
void conv2d_backward_input_cpu(const void* dy, const void* w, void* dx, DType dtype, const Conv2dGeometry& g);
void conv2d_backward_weight_cpu(const void* dy, const void* x, void* dw, DType dtype, const Conv2dGeometry& g);
void conv2d_forward_cuda(const void* x, const void* w, void* y, DType dtype, const Conv2dGeometry& g,
                         ConvLayout layout = ConvLayout::NCHW);
void conv2d_backward_input_cuda(const void* dy, const void* w, void* dx, DType dtype, const Conv2dGeometry& g,
                                ConvLayout layout = ConvLayout::NCHW);
void conv2d_backward_weight_cuda(const void* dy, const void* x, void* dw, DType dtype, const Conv2dGeometry& g,
                                 ConvLayout layout = ConvLayout::NCHW);

}  // namespace ffr
