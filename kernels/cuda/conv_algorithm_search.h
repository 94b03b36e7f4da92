// cuDNN's side of the convolution algorithm choice (kernels/conv_algorithm_cache.h has the rule
// and the cache): the descriptors of a problem, and per pass the candidates from a timed search
// (cudnnFind*Ex) or from the heuristics (cudnnGet*_v7). Internal header (cuDNN types).
#pragma once

#include "engine/cuda/context.h"
#include "kernels/conv_algorithm_cache.h"
#include "kernels/cuda/cudnn_descriptors.h"

namespace ffr::cuda {

inline cudnnTensorFormat_t cudnn_format(ConvLayout layout) {
  return layout == ConvLayout::NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
}

// The descriptors of one problem; built per call (cheap host calls), freed by RAII.
struct ConvDescriptors {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;

  ConvDescriptors(DType dtype, const Conv2dGeometry& g, ConvLayout layout)
      : x(dtype, g.batch, g.in_channels, g.in_height, g.in_width, cudnn_format(layout)),
        y(dtype, g.batch, g.out_channels, g.out_height, g.out_width, cudnn_format(layout)),
        w(dtype, g.out_channels, g.in_channels_per_group(), g.kernel_height, g.kernel_width, cudnn_format(layout)),
        conv(g.pad_height, g.pad_width, g.stride_height, g.stride_width, g.dilation_height, g.dilation_width,
             g.groups) {}
};

// The algorithm for each pass, from the process-wide cache or chosen now (timed when
// cudnn_benchmark()). A timed search runs the candidates on the call's own buffers: it writes only
// the pass's output (y, dx or dw), which the call then overwrites. Its workspace comes from the
// caching allocator and goes back to it afterwards.
ConvAlgorithmChoice forward_algorithm(Context& ctx, ConvDescriptors& desc, DType dtype, const Conv2dGeometry& g,
                                      ConvLayout layout, const void* x, const void* w, void* y);
ConvAlgorithmChoice backward_data_algorithm(Context& ctx, ConvDescriptors& desc, DType dtype, const Conv2dGeometry& g,
                                            ConvLayout layout, const void* w, const void* dy, void* dx);
ConvAlgorithmChoice backward_filter_algorithm(Context& ctx, ConvDescriptors& desc, DType dtype,
                                              const Conv2dGeometry& g, ConvLayout layout, const void* x,
                                              const void* dy, void* dw);

}  // namespace ffr::cuda
