// conv2d on CUDA through cuDNN's convolution API (forward, backward data, backward filter).
//
// Algorithm choice (kernels/conv_algorithm_cache.h, kernels/cuda/conv_algorithm_search.cpp): a
// one-time timed search per problem (cudnnFind*Ex, like PyTorch's cudnn.benchmark; off with
// FFR_CUDNN_BENCHMARK=0, then cuDNN's v7 heuristics), cached process-wide, keyed by everything
// that changes it (pass, device, dtype, layout, sizes, TF32 and determinism settings), so later
// steps only build descriptors and launch. The math type (TF32 / bf16 tensor cores or FMA)
// follows the settings and the dtype; see conv_algorithm_search.cpp.
//
// Layout: NCHW (torchvision's) by default; the launchers also take channels-last (NHWC) buffers.
#include "engine/cuda/context.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/conv_algorithm_search.h"

namespace ffr {

namespace {

using cuda::ConvDescriptors;

void* workspace_for(cuda::Context& ctx, const ConvAlgorithmChoice& choice) {
  return choice.workspace_bytes > 0 ? ctx.ensure_workspace(choice.workspace_bytes) : nullptr;
}

void check_dtype(DType dtype) {
  FFR_CHECK(dtype == DType::Float32 || dtype == DType::BFloat16, "conv2d on CUDA supports float32 and bfloat16, got ",
            dtype_name(dtype));
}

}  // namespace

// alpha and beta are float for both float32 and bfloat16 data (cuDNN scales in the compute type).
void conv2d_forward_cuda(const void* x, const void* w, void* y, DType dtype, const Conv2dGeometry& g,
                         ConvLayout layout) {
  check_dtype(dtype);
  cuda::Context& ctx = cuda::context();
  ConvDescriptors desc(dtype, g, layout);
  const ConvAlgorithmChoice choice = cuda::forward_algorithm(ctx, desc, dtype, g, layout, x, w, y);
  desc.conv.set_math_type(cudnnMathType_t(choice.math));
  void* workspace = workspace_for(ctx, choice);
  const float alpha = 1.0f, beta = 0.0f;
  const auto algorithm = static_cast<cudnnConvolutionFwdAlgo_t>(choice.algorithm);
  FFR_CUDNN_CHECK(cudnnConvolutionForward(ctx.cudnn, &alpha, desc.x.get(), x, desc.w.get(), w, desc.conv.get(),
                                          algorithm, workspace, choice.workspace_bytes, &beta, desc.y.get(), y));
}

void conv2d_backward_input_cuda(const void* dy, const void* w, void* dx, DType dtype, const Conv2dGeometry& g,
                                ConvLayout layout) {
  check_dtype(dtype);
  cuda::Context& ctx = cuda::context();
  ConvDescriptors desc(dtype, g, layout);
  const ConvAlgorithmChoice choice = cuda::backward_data_algorithm(ctx, desc, dtype, g, layout, w, dy, dx);
  desc.conv.set_math_type(cudnnMathType_t(choice.math));
  void* workspace = workspace_for(ctx, choice);
  const float alpha = 1.0f, beta = 0.0f;
  FFR_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &alpha, desc.w.get(), w, desc.y.get(), dy,
                                               desc.conv.get(), cudnnConvolutionBwdDataAlgo_t(choice.algorithm),
                                               workspace, choice.workspace_bytes, &beta, desc.x.get(), dx));
}

void conv2d_backward_weight_cuda(const void* dy, const void* x, void* dw, DType dtype, const Conv2dGeometry& g,
                                 ConvLayout layout) {
  check_dtype(dtype);
  cuda::Context& ctx = cuda::context();
  ConvDescriptors desc(dtype, g, layout);
  const ConvAlgorithmChoice choice = cuda::backward_filter_algorithm(ctx, desc, dtype, g, layout, x, dy, dw);
  desc.conv.set_math_type(cudnnMathType_t(choice.math));
  void* workspace = workspace_for(ctx, choice);
  const float alpha = 1.0f, beta = 0.0f;
  FFR_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &alpha, desc.x.get(), x, desc.y.get(), dy,
                                                 desc.conv.get(), cudnnConvolutionBwdFilterAlgo_t(choice.algorithm),
                                                 workspace, choice.workspace_bytes, &beta, desc.w.get(), dw));
}

}  // namespace ffr
