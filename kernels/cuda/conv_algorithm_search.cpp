// Candidates for a convolution pass from cuDNN, turned into ConvCandidates for
// pick_conv_algorithm (kernels/conv_algorithm_cache.h), and the result cached process-wide.
//
// Math: bfloat16 data runs on tensor cores with float32 accumulation; float32 uses TF32 tensor
// cores only when settings().allow_tf32, and otherwise CUDNN_FMA_MATH, because cuDNN's default
// math may pick TF32 for float32 data on its own. allow_tf32 is set by Precision::TensorFloat32
// (engine/precision.h; the CUDA default), bf16 data by Precision::BFloat16
// (kernels/bfloat16_compute.h). CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION is never used: it lets cuDNN
// convert float32 data to fp16.
#include "kernels/cuda/conv_algorithm_search.h"

#include "engine/allocator.h"
#include "engine/settings.h"

#include <algorithm>
#include <vector>

namespace ffr::cuda {

namespace {

// Larger workspaces than this are skipped: the next-ranked algorithm is rarely much slower,
// and a ResNet-50 step should not double its memory for one convolution.
constexpr size_t kMaxWorkspaceBytes = size_t(1) << 30;

cudnnMathType_t requested_math(DType dtype) {
  if (dtype == DType::BFloat16 || settings().allow_tf32) return CUDNN_TENSOR_OP_MATH;
  return CUDNN_FMA_MATH;
}

// The math type to run a candidate with: its own, unless that would let float32 use tensor cores
// against the settings, or convert float32 data to fp16 (ALLOW_CONVERSION, offered by Find*).
cudnnMathType_t candidate_math(DType dtype, cudnnMathType_t offered) {
  if (requested_math(dtype) == CUDNN_FMA_MATH) return CUDNN_FMA_MATH;
  return offered == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ? CUDNN_TENSOR_OP_MATH : offered;
}

// What differs between the three passes: cuDNN's entry points, bound to the problem's descriptors.
//   max_count(&n), heuristics(n, &returned, perf*), find(n, &returned, perf*, workspace, bytes),
//   workspace_size(algo, &bytes) -> bool (false: the algorithm does not support the problem).
template <typename Perf, typename MaxCount, typename Heuristics, typename Find, typename WorkspaceSize>
ConvAlgorithmChoice choose(ConvDescriptors& desc, DType dtype, const ConvAlgorithmKey& key, int device,
                           MaxCount&& max_count, Heuristics&& heuristics, Find&& find,
                           WorkspaceSize&& workspace_size) {
  const bool timed = cudnn_benchmark();
  desc.conv.set_math_type(requested_math(dtype));
  int count = 0, returned = 0;
  FFR_CUDNN_CHECK(max_count(&count));
  std::vector<Perf> perf(static_cast<size_t>(count));
  std::vector<ConvCandidate> candidates;
  if (timed) {
    // The workspace the hungriest supported algorithm asks for, capped.
    size_t largest = 0;
    for (int algo = 0; algo < count; ++algo) {
      size_t bytes = 0;
      if (workspace_size(algo, &bytes) && bytes <= kMaxWorkspaceBytes) largest = std::max(largest, bytes);
    }
    // From the caching allocator; returned to it after the search, which synchronises, so no
    // kernel still uses it.
    SearchWorkspace workspace(cuda_allocator(device), largest);
    FFR_CUDNN_CHECK(find(count, &returned, perf.data(), workspace.data(), workspace.bytes()));
    for (int i = 0; i < returned; ++i) {
      const Perf& p = perf[size_t(i)];
      ConvCandidate c;
      c.algorithm = int(p.algo);
      c.math = int(candidate_math(dtype, p.mathType));
      c.ok = p.status == CUDNN_STATUS_SUCCESS && p.time >= 0.0f;
      c.deterministic = p.determinism == CUDNN_DETERMINISTIC;
      c.workspace_bytes = p.memory;
      c.milliseconds = p.time;
      candidates.push_back(c);
    }
  } else {
    FFR_CUDNN_CHECK(heuristics(count, &returned, perf.data()));
    for (int i = 0; i < returned; ++i) {
      const Perf& p = perf[size_t(i)];
      ConvCandidate c;
      c.algorithm = int(p.algo);
      c.math = int(candidate_math(dtype, p.mathType));
      c.deterministic = p.determinism == CUDNN_DETERMINISTIC;
      if (p.status == CUDNN_STATUS_SUCCESS) {
        desc.conv.set_math_type(cudnnMathType_t(c.math));
        c.ok = workspace_size(int(p.algo), &c.workspace_bytes);
      }
      candidates.push_back(c);
    }
  }
  return pick_conv_algorithm(candidates, settings().deterministic, kMaxWorkspaceBytes, key);
}

}  // namespace

ConvAlgorithmChoice forward_algorithm(Context& ctx, ConvDescriptors& desc, DType dtype, const Conv2dGeometry& g,
                                      ConvLayout layout, const void* x, const void* w, void* y) {
  const ConvAlgorithmKey key =
      conv_algorithm_key(ConvPass::Forward, ctx.device, dtype, layout, g, settings(), cudnn_benchmark());
  return conv_algorithm_cache().get_or_choose(key, [&] {
    return choose<cudnnConvolutionFwdAlgoPerf_t>(
        desc, dtype, key, ctx.device,
        [&](int* n) { return cudnnGetConvolutionForwardAlgorithmMaxCount(ctx.cudnn, n); },
        [&](int n, int* returned, cudnnConvolutionFwdAlgoPerf_t* perf) {
          return cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, desc.x.get(), desc.w.get(), desc.conv.get(),
                                                        desc.y.get(), n, returned, perf);
        },
        [&](int n, int* returned, cudnnConvolutionFwdAlgoPerf_t* perf, void* workspace, size_t bytes) {
          return cudnnFindConvolutionForwardAlgorithmEx(ctx.cudnn, desc.x.get(), x, desc.w.get(), w,
                                                        desc.conv.get(), desc.y.get(), y, n, returned, perf,
                                                        workspace, bytes);
        },
        [&](int algo, size_t* bytes) {
          return cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, desc.x.get(), desc.w.get(), desc.conv.get(),
                                                         desc.y.get(), cudnnConvolutionFwdAlgo_t(algo),
                                                         bytes) == CUDNN_STATUS_SUCCESS;
        });
  });
}

ConvAlgorithmChoice backward_data_algorithm(Context& ctx, ConvDescriptors& desc, DType dtype, const Conv2dGeometry& g,
                                            ConvLayout layout, const void* w, const void* dy, void* dx) {
  const ConvAlgorithmKey key =
      conv_algorithm_key(ConvPass::BackwardData, ctx.device, dtype, layout, g, settings(), cudnn_benchmark());
  return conv_algorithm_cache().get_or_choose(key, [&] {
    return choose<cudnnConvolutionBwdDataAlgoPerf_t>(
        desc, dtype, key, ctx.device,
        [&](int* n) { return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(ctx.cudnn, n); },
        [&](int n, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
          return cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.cudnn, desc.w.get(), desc.y.get(), desc.conv.get(),
                                                             desc.x.get(), n, returned, perf);
        },
        [&](int n, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf, void* workspace, size_t bytes) {
          return cudnnFindConvolutionBackwardDataAlgorithmEx(ctx.cudnn, desc.w.get(), w, desc.y.get(), dy,
                                                             desc.conv.get(), desc.x.get(), dx, n, returned, perf,
                                                             workspace, bytes);
        },
        [&](int algo, size_t* bytes) {
          return cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, desc.w.get(), desc.y.get(),
                                                              desc.conv.get(), desc.x.get(),
                                                              cudnnConvolutionBwdDataAlgo_t(algo),
                                                              bytes) == CUDNN_STATUS_SUCCESS;
        });
  });
}

ConvAlgorithmChoice backward_filter_algorithm(Context& ctx, ConvDescriptors& desc, DType dtype,
                                              const Conv2dGeometry& g, ConvLayout layout, const void* x,
                                              const void* dy, void* dw) {
  const ConvAlgorithmKey key =
      conv_algorithm_key(ConvPass::BackwardFilter, ctx.device, dtype, layout, g, settings(), cudnn_benchmark());
  return conv_algorithm_cache().get_or_choose(key, [&] {
    return choose<cudnnConvolutionBwdFilterAlgoPerf_t>(
        desc, dtype, key, ctx.device,
        [&](int* n) { return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(ctx.cudnn, n); },
        [&](int n, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
          return cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx.cudnn, desc.x.get(), desc.y.get(),
                                                               desc.conv.get(), desc.w.get(), n, returned, perf);
        },
        [&](int n, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf, void* workspace, size_t bytes) {
          return cudnnFindConvolutionBackwardFilterAlgorithmEx(ctx.cudnn, desc.x.get(), x, desc.y.get(), dy,
                                                               desc.conv.get(), desc.w.get(), dw, n, returned, perf,
                                                               workspace, bytes);
        },
        [&](int algo, size_t* bytes) {
          return cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx.cudnn, desc.x.get(), desc.y.get(),
                                                                desc.conv.get(), desc.w.get(),
                                                                cudnnConvolutionBwdFilterAlgo_t(algo),
                                                                bytes) == CUDNN_STATUS_SUCCESS;
        });
  });
}

}  // namespace ffr::cuda
