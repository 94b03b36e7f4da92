#include "kernels/linear_activation.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/flop_counter.h"
#include "engine/nvtx.h"
#include "kernels/activation.h"
#include "kernels/bfloat16_compute.h"
#include "kernels/bias.h"
#include "kernels/matmul.h"
#ifdef FFR_WITH_ONEDNN
#include "kernels/onednn/matmul.h"
#endif

namespace ffr {
namespace {

// x [..., in] times w^T as one GEMM (the leading dims of x flattened into m).
GemmProblem linear_problem(const Tensor& x, const Tensor& weight) {
  GemmProblem p;
  p.m = x.numel() / x.size(-1);
  p.k = x.size(-1);
  p.n = weight.size(0);
  p.transpose_b = true;
  return p;
}

bool shapes_fit(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return x.ndim() >= 2 && weight.ndim() == 2 && x.size(-1) == weight.size(1) && x.numel() > 0 &&
         (!bias.defined() || bias.shape() == Shape{weight.size(0)});
}

}  // namespace

bool linear_bias_gelu_is_fused(const Tensor& x, const Tensor& weight, const Tensor& bias) {
#ifdef FFR_WITH_ONEDNN
  const auto f32_cpu = [](const Tensor& t) {
    return !t.defined() || (t.device().is_cpu() && t.dtype() == DType::Float32);
  };
  return f32_cpu(x) && f32_cpu(weight) && f32_cpu(bias) && shapes_fit(x, weight, bias) &&
         !needs_grad({&x, &weight, &bias}) && !uses_bfloat16_compute(x) &&
         onednn::gemm_supported(linear_problem(x, weight));
#else
  (void)x, (void)weight, (void)bias;
  return false;
#endif
}

Tensor linear_bias_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias, bool gelu) {
  if (!linear_bias_gelu_is_fused(x, weight, bias)) {
    Tensor y = matmul(x, weight, false, true);
    if (bias.defined()) y = add_bias(y, bias);
    return gelu ? ffr::gelu(y) : y;
  }
#ifdef FFR_WITH_ONEDNN
  OpScope scope("linear_bias_gelu(" + x.str() + ", " + weight.str() + ")");
  NvtxRange range("linear_bias_gelu");
  const GemmProblem p = linear_problem(x, weight);
  FlopCounter::record(p.batch * p.m * p.n * p.k);
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(p.n);
  Tensor y = Tensor::empty(out_shape, DType::Float32, x.device());
  onednn::GemmEpilogue epilogue;
  epilogue.bias = bias.defined() ? bias.data<float>() : nullptr;
  epilogue.gelu = gelu;
  onednn::gemm(p, x.data<float>(), weight.data<float>(), y.data<float>(), epilogue);
  return y;
#else
  FFR_FAIL("linear_bias_gelu: fused path without oneDNN");
#endif
}

}  // namespace ffr
