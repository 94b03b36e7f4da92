// float32 Conv2d forward, backward-data and backward-weights through oneDNN primitives, over the
// engine's contiguous NCHW buffers (weights [Cout, Cin/groups, kH, kW]). Groups and dilation are
// supported. kernels/conv2d.cpp calls these for float32 CPU tensors when built with oneDNN.
//
// Memory format (FFR_ONEDNN_CONV_LAYOUT=auto|blocked|plain|mixed, read once; default auto):
//   auto:    plain for forward passes of at most kPlainForwardBatch images, blocked otherwise;
//   blocked: format_tag::any, so oneDNN picks its blocked layouts (nChw16c on AVX-512), and every
//            call reorders its operands in and its result out (training weights change each step
//            and tensors carry no version counter, so the weight reorder is not cached);
//   plain:   oneDNN runs on NCHW/OIHW as they are (its gemm-based and jit kernels), no reorders;
//   mixed:   plain for forward and backward-data, blocked for backward-weights.
// Why blocked (2-core AVX-512 EPYC, noisy shared machine): a ResNet-50 training step (batch 32,
// 112 px) took 1.45-1.59 s blocked, 1.64-1.70 s plain, 1.53-1.78 s mixed, 2.1-2.3 s on the
// im2col/OpenBLAS path; inference (224 px, batch 1 and 16) was a tie between blocked and plain.
// Plain's gemm-based backward-weights is the weak spot (bench/experiments/onednn_conv_layouts.cpp per shape).
// Why auto: at batch 1 the per-call reorders (the weights' above all) outweigh what blocked
// kernels gain: ResNet-50 inference at 224 px, batch 1, took 41-45 ms plain against 47-48 ms
// blocked (quiet machine, same session), where PyTorch took 46-51 ms.
// Primitives are cached per thread by geometry, direction and layout (oneDNN's own primitive
// cache would also serve, but a lookup there still builds the operation descriptor each call).
#pragma once

#include "kernels/conv2d.h"

namespace ffr::onednn {

// Mixed: plain for forward and backward-data, blocked for backward-weights; Auto: see above.
enum class ConvFormat : int8_t { Plain, Blocked, Mixed, Auto };
constexpr int64_t kPlainForwardBatch = 4;

// FFR_ONEDNN_CONV_LAYOUT's choice (an ffr::Error names a bad value).
ConvFormat default_conv_format();

void conv2d_forward(const float* x, const float* w, float* y, const Conv2dGeometry& g,
                    ConvFormat format = default_conv_format());
void conv2d_backward_input(const float* dy, const float* w, float* dx, const Conv2dGeometry& g,
                           ConvFormat format = default_conv_format());
void conv2d_backward_weight(const float* dy, const float* x, float* dw, const Conv2dGeometry& g,
                            ConvFormat format = default_conv_format());

}  // namespace ffr::onednn
