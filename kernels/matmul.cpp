#include "kernels/matmul.h"

#include "engine/flop_counter.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/settings.h"
#include "kernels/bfloat16_compute.h"
#include "kernels/dispatch.h"
#ifdef FFR_WITH_ONEDNN
#include "kernels/onednn/matmul.h"
#endif

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <type_traits>

namespace ffr {

// ---- CPU reference: OpenBLAS, one call per batch entry ----

void gemm_cpu(const GemmProblem& p, const void* a, const void* b, void* c, DType dtype) {
  dispatch_cpu_floating(dtype, "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* pc = static_cast<T*>(c);
    if (p.m == 0 || p.n == 0) return;
    if (p.k == 0) {  // an empty sum; BLAS would leave c untouched for some implementations
      for (int64_t i = 0; i < p.batch; ++i) std::fill(pc + i * p.stride_c, pc + i * p.stride_c + p.m * p.n, T(0));
      return;
    }
    // Row-major: the leading dimension of a stored matrix is its column count.
    const blasint m = blasint(p.m), n = blasint(p.n), k = blasint(p.k);
    const blasint lda = p.transpose_a ? m : k;
    const blasint ldb = p.transpose_b ? k : n;
    const CBLAS_TRANSPOSE ta = p.transpose_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = p.transpose_b ? CblasTrans : CblasNoTrans;
    for (int64_t i = 0; i < p.batch; ++i) {
      const T* ai = pa + i * p.stride_a;
      const T* bi = pb + i * p.stride_b;
      T* ci = pc + i * p.stride_c;
      if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, ai, lda, bi, ldb, 0.0f, ci, n);
      } else {
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, ai, lda, bi, ldb, 0.0, ci, n);
      }
    }
  });
}

// ---- dispatch + autograd ----

namespace {

std::string describe(const char* op, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  std::string s = std::string(op) + "(" + a.str() + ", " + b.str();
  if (ta) s += ", transpose_a";
  if (tb) s += ", transpose_b";
  return s + ")";
}

void check_operands(const Tensor& a, const Tensor& b) {
  FFR_CHECK(a.defined() && b.defined(), "undefined operand");
  FFR_CHECK(a.dtype() == b.dtype(), "dtype mismatch: ", a.str(), " and ", b.str());
  FFR_CHECK(a.device() == b.device(), "device mismatch: ", a.str(), " and ", b.str());
  FFR_CHECK(is_floating(a.dtype()), "needs floating-point operands, got ", a.str());
}

// cuBLAS and (LP64) OpenBLAS take int dimensions.
void check_fits_int(const GemmProblem& p) {
  FFR_CHECK(p.m <= INT_MAX && p.n <= INT_MAX && p.k <= INT_MAX && p.batch <= INT_MAX,
            "GEMM dimensions m=", p.m, " n=", p.n, " k=", p.k, " batch=", p.batch, " exceed the int range");
}

void launch_gemm(const GemmProblem& p, const Tensor& a, const Tensor& b, Tensor& out) {
#ifdef FFR_WITH_CUDA
  if (a.is_cuda()) {
    gemm_cuda(p, a.raw_data(), b.raw_data(), out.raw_data(), a.dtype());
    return;
  }
#endif
#ifdef FFR_WITH_ONEDNN
  // float32 on oneDNN's matmul (kernels/onednn/matmul.h); float64 stays on OpenBLAS.
  if (a.dtype() == DType::Float32 && onednn::gemm_supported(p)) {
    onednn::gemm(p, a.data<float>(), b.data<float>(), out.data<float>());
    return;
  }
#endif
  gemm_cpu(p, a.raw_data(), b.raw_data(), out.raw_data(), a.dtype());
}

Tensor run_gemm(const GemmProblem& p, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  check_fits_int(p);
  FlopCounter::record(p.batch * p.m * p.n * p.k);
  if (uses_bfloat16_compute(a)) {
    return run_in_bfloat16(a, b, out_shape,
                           [&](const Tensor& a16, const Tensor& b16, Tensor& out) { launch_gemm(p, a16, b16, out); });
  }
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  launch_gemm(p, a, b, out);
  return out;
}

// The backward GEMMs compute in the precision the forward one did, even if the backward pass
// runs under other settings.
Settings backward_settings(bool bfloat16_compute) {
  Settings s = settings();
  s.bfloat16_compute = bfloat16_compute;
  return s;
}

}  // namespace

// Y = op(A) op(B). With G = dY:
//   dA = G op(B)^T, stored transposed when transpose_a: dA = op(B) G^T;
//   dB = op(A)^T G, stored transposed when transpose_b: dB = G^T op(A).
// Each is one GEMM on the stored operands with transpose flags; only the gradients an input
// needs are computed, and only the operand that gradient reads is saved.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  OpScope scope(describe("matmul", a, b, transpose_a, transpose_b));
  NvtxRange range("matmul");
  check_operands(a, b);
  FFR_CHECK(a.ndim() >= 2 && b.ndim() == 2, "needs a of 2+ dims and a 2-D b, got ", a.str(), " and ", b.str());
  FFR_CHECK(a.ndim() == 2 || !transpose_a, "transpose_a needs a 2-D a, got ", a.str());
  GemmProblem p;
  p.transpose_a = transpose_a;
  p.transpose_b = transpose_b;
  const Shape leading(a.shape().begin(), a.shape().end() - 1);  // flattened into M
  p.m = transpose_a ? a.size(1) : shape_numel(leading);
  p.k = transpose_a ? a.size(0) : a.size(-1);
  p.n = transpose_b ? b.size(0) : b.size(1);
  const int64_t kb = transpose_b ? b.size(1) : b.size(0);
  FFR_CHECK(kb == p.k, "inner dimensions differ: ", p.k, " vs ", kb);
  Shape out_shape = transpose_a ? Shape{p.m} : leading;
  out_shape.push_back(p.n);
  Tensor out = run_gemm(p, a, b, out_shape);

  if (!needs_grad({&a, &b})) return out;
  const bool need_a = needs_grad({&a}), need_b = needs_grad({&b});
  const Shape a_shape = a.shape();
  const Shape a2 = transpose_a ? a_shape : Shape{p.m, p.k};  // a as the 2-D matrix it was used as
  const Shape g2 = {p.m, p.n};
  record_op("matmul", out, {a, b},
            [ad = need_b ? a.detach() : Tensor(), bd = need_a ? b.detach() : Tensor(), a_shape, a2, g2,
             transpose_a, transpose_b, bf16 = settings().bfloat16_compute](const Tensor& gy) {
              SettingsScope precision(backward_settings(bf16));
              const Tensor g = gy.view_as_shape(g2);
              Tensor ga, gb;
              if (bd.defined()) {
                ga = transpose_a ? matmul(bd, g, transpose_b, true) : matmul(g, bd, false, !transpose_b);
                ga = ga.view_as_shape(a_shape);
              }
              if (ad.defined()) {
                const Tensor a_matrix = ad.view_as_shape(a2);
                gb = transpose_b ? matmul(g, a_matrix, true, transpose_a) : matmul(a_matrix, g, !transpose_a, false);
              }
              return std::vector<Tensor>{ga, gb};
            });
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  OpScope scope(describe("bmm", a, b, transpose_a, transpose_b));
  NvtxRange range("bmm");
  check_operands(a, b);
  FFR_CHECK(a.ndim() == 3 && b.ndim() == 3, "needs 3-D operands, got ", a.str(), " and ", b.str());
  FFR_CHECK(a.size(0) == b.size(0), "batch sizes differ: ", a.size(0), " vs ", b.size(0));
  GemmProblem p;
  p.batch = a.size(0);
  p.transpose_a = transpose_a;
  p.transpose_b = transpose_b;
  p.m = transpose_a ? a.size(2) : a.size(1);
  p.k = transpose_a ? a.size(1) : a.size(2);
  p.n = transpose_b ? b.size(1) : b.size(2);
  const int64_t kb = transpose_b ? b.size(2) : b.size(1);
  FFR_CHECK(kb == p.k, "inner dimensions differ: ", p.k, " vs ", kb);
  p.stride_a = p.m * p.k;
  p.stride_b = p.k * p.n;
  p.stride_c = p.m * p.n;
  Tensor out = run_gemm(p, a, b, {p.batch, p.m, p.n});

  if (!needs_grad({&a, &b})) return out;
  const bool need_a = needs_grad({&a}), need_b = needs_grad({&b});
  record_op("bmm", out, {a, b},
            [ad = need_b ? a.detach() : Tensor(), bd = need_a ? b.detach() : Tensor(), transpose_a,
             transpose_b, bf16 = settings().bfloat16_compute](const Tensor& g) {
              SettingsScope precision(backward_settings(bf16));
              Tensor ga, gb;
              if (bd.defined()) ga = transpose_a ? bmm(bd, g, transpose_b, true) : bmm(g, bd, false, !transpose_b);
              if (ad.defined()) gb = transpose_b ? bmm(g, ad, true, transpose_a) : bmm(ad, g, !transpose_a, false);
              return std::vector<Tensor>{ga, gb};
            });
  return out;
}

}  // namespace ffr
