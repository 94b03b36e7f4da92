// conv2d on CUDA through cuDNN's convolution API (forward, backward data, backward filter).
//
// Algorithm choice: cuDNN's heuristics (Get*_v7) rank the algorithms for a problem without
// running anything, so choosing costs no device time and no host synchronisation (Find*Ex would
// time every candidate on the GPU, stalling the first step). The first ranked algorithm that
// succeeds, fits the determinism setting and has a workspace under kMaxWorkspaceBytes wins; the
// choice is cached per thread, keyed by everything that changes it (pass, device, dtype, sizes,
// TF32 and determinism settings), so later steps only build descriptors and launch.
//
// Math: bfloat16 data runs on tensor cores with float32 accumulation; float32 uses TF32 tensor
// cores only when settings().allow_tf32, and otherwise CUDNN_FMA_MATH, because cuDNN's default
// math may pick TF32 for float32 data on its own. allow_tf32 is set by Precision::TensorFloat32
// (engine/precision.h; the CUDA default), bf16 data by Precision::BFloat16 (kernels/bfloat16_compute.h).
// CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION is never used: it lets cuDNN convert float32 data to fp16.
#include "engine/cuda/context.h"
#include "engine/settings.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/cudnn_descriptors.h"

#include <array>
#include <map>
#include <vector>

namespace ffr {

namespace {

// Larger workspaces than this are skipped: the next-ranked algorithm is rarely much slower,
// and a ResNet-50 step should not double its memory for one convolution.
constexpr size_t kMaxWorkspaceBytes = size_t(1) << 30;

enum class ConvPass : int64_t { Forward, BackwardData, BackwardFilter };

struct AlgorithmChoice {
  int algorithm = 0;  // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace_bytes = 0;
};

using ProblemKey = std::array<int64_t, 21>;

ProblemKey problem_key(ConvPass pass, DType dtype, const Conv2dGeometry& g) {
  const Settings& s = settings();
  return {int64_t(pass), cuda::context().device, int64_t(dtype), s.allow_tf32, s.deterministic,
          g.batch, g.in_channels, g.in_height, g.in_width, g.out_channels, g.kernel_height, g.kernel_width,
          g.stride_height, g.stride_width, g.pad_height, g.pad_width, g.dilation_height, g.dilation_width,
          g.groups, g.out_height, g.out_width};
}

// This thread's chosen algorithms. Per thread like the cuDNN handle it was chosen with, so no
// locking and nothing shared between independent users of the library.
class ConvAlgorithmCache {
 public:
  const AlgorithmChoice* find(const ProblemKey& key) const {
    auto it = choices_.find(key);
    return it == choices_.end() ? nullptr : &it->second;
  }
  const AlgorithmChoice& insert(const ProblemKey& key, const AlgorithmChoice& choice) {
    return choices_[key] = choice;
  }

 private:
  std::map<ProblemKey, AlgorithmChoice> choices_;
};

ConvAlgorithmCache& algorithm_cache() {
  thread_local ConvAlgorithmCache cache;
  return cache;
}

// The descriptors of one problem; built per call (cheap host calls), freed by RAII.
struct ConvDescriptors {
  cuda::TensorDescriptor x, y;
  cuda::FilterDescriptor w;
  cuda::ConvolutionDescriptor conv;

  ConvDescriptors(DType dtype, const Conv2dGeometry& g)
      : x(dtype, g.batch, g.in_channels, g.in_height, g.in_width),
        y(dtype, g.batch, g.out_channels, g.out_height, g.out_width),
        w(dtype, g.out_channels, g.in_channels_per_group(), g.kernel_height, g.kernel_width),
        conv(g.pad_height, g.pad_width, g.stride_height, g.stride_width, g.dilation_height, g.dilation_width,
             g.groups) {}
};

cudnnMathType_t requested_math(DType dtype) {
  if (dtype == DType::BFloat16 || settings().allow_tf32) return CUDNN_TENSOR_OP_MATH;
  return CUDNN_FMA_MATH;
}

// The math type to run a ranked candidate with: its own, unless that would let float32 use
// tensor cores against the settings.
cudnnMathType_t candidate_math(DType dtype, cudnnMathType_t ranked) {
  const cudnnMathType_t requested = requested_math(dtype);
  return requested == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : ranked;
}

// Walks a ranked list of perf results and keeps the first usable one. `workspace_size` asks
// cuDNN for the workspace of (algorithm, math) and returns false if that pair is unsupported.
template <typename Perf, typename WorkspaceSize>
AlgorithmChoice pick_algorithm(const std::vector<Perf>& ranked, int returned, DType dtype,
                               ConvDescriptors& desc, WorkspaceSize&& workspace_size, const char* pass) {
  const bool deterministic = settings().deterministic;
  for (int i = 0; i < returned; ++i) {
    const Perf& perf = ranked[size_t(i)];
    if (perf.status != CUDNN_STATUS_SUCCESS) continue;
    if (deterministic && perf.determinism != CUDNN_DETERMINISTIC) continue;
    AlgorithmChoice choice;
    choice.algorithm = int(perf.algo);
    choice.math = candidate_math(dtype, perf.mathType);
    desc.conv.set_math_type(choice.math);
    if (!workspace_size(perf.algo, &choice.workspace_bytes)) continue;
    if (choice.workspace_bytes > kMaxWorkspaceBytes) continue;
    return choice;
  }
  FFR_FAIL("cuDNN offers no usable ", pass, " algorithm for this convolution (", dtype_name(dtype),
           deterministic ? ", deterministic" : "", ")");
}

const AlgorithmChoice& forward_algorithm(cuda::Context& ctx, ConvDescriptors& desc, DType dtype,
                                         const Conv2dGeometry& g) {
  const ProblemKey key = problem_key(ConvPass::Forward, dtype, g);
  if (const AlgorithmChoice* cached = algorithm_cache().find(key)) return *cached;
  desc.conv.set_math_type(requested_math(dtype));
  int count = 0, returned = 0;
  FFR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(ctx.cudnn, &count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(static_cast<size_t>(count));
  FFR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(ctx.cudnn, desc.x.get(), desc.w.get(), desc.conv.get(),
                                                         desc.y.get(), count, &returned, ranked.data()));
  auto workspace = [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, desc.x.get(), desc.w.get(), desc.conv.get(),
                                                   desc.y.get(), algo, bytes) == CUDNN_STATUS_SUCCESS;
  };
  return algorithm_cache().insert(key, pick_algorithm(ranked, returned, dtype, desc, workspace, "forward"));
}

const AlgorithmChoice& backward_data_algorithm(cuda::Context& ctx, ConvDescriptors& desc, DType dtype,
                                               const Conv2dGeometry& g) {
  const ProblemKey key = problem_key(ConvPass::BackwardData, dtype, g);
  if (const AlgorithmChoice* cached = algorithm_cache().find(key)) return *cached;
  desc.conv.set_math_type(requested_math(dtype));
  int count = 0, returned = 0;
  FFR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(ctx.cudnn, &count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(static_cast<size_t>(count));
  FFR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.cudnn, desc.w.get(), desc.y.get(),
                                                              desc.conv.get(), desc.x.get(), count, &returned,
                                                              ranked.data()));
  auto workspace = [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.cudnn, desc.w.get(), desc.y.get(), desc.conv.get(),
                                                        desc.x.get(), algo, bytes) == CUDNN_STATUS_SUCCESS;
  };
  return algorithm_cache().insert(key, pick_algorithm(ranked, returned, dtype, desc, workspace, "backward-data"));
}

const AlgorithmChoice& backward_filter_algorithm(cuda::Context& ctx, ConvDescriptors& desc, DType dtype,
                                                 const Conv2dGeometry& g) {
  const ProblemKey key = problem_key(ConvPass::BackwardFilter, dtype, g);
  if (const AlgorithmChoice* cached = algorithm_cache().find(key)) return *cached;
  desc.conv.set_math_type(requested_math(dtype));
  int count = 0, returned = 0;
  FFR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(ctx.cudnn, &count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> ranked(static_cast<size_t>(count));
  FFR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx.cudnn, desc.x.get(), desc.y.get(),
                                                                desc.conv.get(), desc.w.get(), count, &returned,
                                                                ranked.data()));
  auto workspace = [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx.cudnn, desc.x.get(), desc.y.get(), desc.conv.get(),
                                                          desc.w.get(), algo, bytes) == CUDNN_STATUS_SUCCESS;
  };
  return algorithm_cache().insert(key,
                                  pick_algorithm(ranked, returned, dtype, desc, workspace, "backward-filter"));
}

void* workspace_for(cuda::Context& ctx, const AlgorithmChoice& choice) {
  return choice.workspace_bytes > 0 ? ctx.ensure_workspace(choice.workspace_bytes) : nullptr;
}

void check_dtype(DType dtype) {
  FFR_CHECK(dtype == DType::Float32 || dtype == DType::BFloat16, "conv2d on CUDA supports float32 and bfloat16, got ",
            dtype_name(dtype));
}

}  // namespace

// alpha and beta are float for both float32 and bfloat16 data (cuDNN scales in the compute type).
void conv2d_forward_cuda(const void* x, const void* w, void* y, DType dtype, const Conv2dGeometry& g) {
  check_dtype(dtype);
  cuda::Context& ctx = cuda::context();
  ConvDescriptors desc(dtype, g);
  const AlgorithmChoice choice = forward_algorithm(ctx, desc, dtype, g);
  desc.conv.set_math_type(choice.math);
  void* workspace = workspace_for(ctx, choice);
  const float alpha = 1.0f, beta = 0.0f;
  const auto algorithm = static_cast<cudnnConvolutionFwdAlgo_t>(choice.algorithm);
  FFR_CUDNN_CHECK(cudnnConvolutionForward(ctx.cudnn, &alpha, desc.x.get(), x, desc.w.get(), w, desc.conv.get(),
                                          algorithm, workspace, choice.workspace_bytes, &beta, desc.y.get(), y));
}

void conv2d_backward_input_cuda(const void* dy, const void* w, void* dx, DType dtype, const Conv2dGeometry& g) {
  check_dtype(dtype);
  cuda::Context& ctx = cuda::context();
  ConvDescriptors desc(dtype, g);
  const AlgorithmChoice choice = backward_data_algorithm(ctx, desc, dtype, g);
  desc.conv.set_math_type(choice.math);
  void* workspace = workspace_for(ctx, choice);
  const float alpha = 1.0f, beta = 0.0f;
  FFR_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &alpha, desc.w.get(), w, desc.y.get(), dy,
                                               desc.conv.get(), cudnnConvolutionBwdDataAlgo_t(choice.algorithm),
                                               workspace, choice.workspace_bytes, &beta, desc.x.get(), dx));
}

void conv2d_backward_weight_cuda(const void* dy, const void* x, void* dw, DType dtype, const Conv2dGeometry& g) {
  check_dtype(dtype);
  cuda::Context& ctx = cuda::context();
  ConvDescriptors desc(dtype, g);
  const AlgorithmChoice choice = backward_filter_algorithm(ctx, desc, dtype, g);
  desc.conv.set_math_type(choice.math);
  void* workspace = workspace_for(ctx, choice);
  const float alpha = 1.0f, beta = 0.0f;
  FFR_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &alpha, desc.x.get(), x, desc.y.get(), dy,
                                                 desc.conv.get(), cudnnConvolutionBwdFilterAlgo_t(choice.algorithm),
                                                 workspace, choice.workspace_bytes, &beta, desc.w.get(), dw));
}

}  // namespace ffr
