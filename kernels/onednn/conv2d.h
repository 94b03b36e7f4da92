// float32 Conv2d forward, backward-data and backward-weights through oneDNN primitives, over the
// engine's contiguous NCHW buffers (weights [Cout, Cin/groups, kH, kW]). Groups and dilation are
// supported. kernels/conv2d.cpp calls these for float32 CPU tensors when built with oneDNN.
//
// Memory format (FFR_ONEDNN_CONV_LAYOUT=plain|blocked, read once; default plain):
//   plain:   oneDNN runs on NCHW/OIHW as they are (its gemm-based and jit kernels), no reorders;
//   blocked: format_tag::any, so oneDNN picks its blocked layouts (nChw16c on AVX-512), and every
//            call reorders its operands in and its result out (training weights change each step,
//            so the weight reorder is not cached). dev/onednn_conv_layouts.cpp measures both.
// Primitives are cached per thread by geometry, direction and layout (oneDNN's own primitive
// cache would also serve, but a lookup there still builds the operation descriptor each call).
#pragma once

#include "kernels/conv2d.h"

namespace ffr::onednn {

enum class ConvFormat : int8_t { Plain, Blocked };

// FFR_ONEDNN_CONV_LAYOUT's choice (an ffr::Error names a bad value).
ConvFormat default_conv_format();

void conv2d_forward(const float* x, const float* w, float* y, const Conv2dGeometry& g,
                    ConvFormat format = default_conv_format());
void conv2d_backward_input(const float* dy, const float* w, float* dx, const Conv2dGeometry& g,
                           ConvFormat format = default_conv_format());
void conv2d_backward_weight(const float* dy, const float* x, float* dw, const Conv2dGeometry& g,
                            ConvFormat format = default_conv_format());

}  // namespace ffr::onednn
