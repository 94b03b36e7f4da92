#include "kernels/batch_norm_activation.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

#include <cmath>

namespace ffr {

void batch_norm_eval_add_relu_cpu(const void* x, DType dtype, int64_t batch, int64_t channels, int64_t spatial,
                                  const void* scale, const void* shift, const void* residual, bool relu, void* y) {
  dispatch_cpu_floating(dtype, "batch_norm_eval_add_relu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    const T* pr = static_cast<const T*>(residual);
    const T* pa = static_cast<const T*>(scale);
    const T* pb = static_cast<const T*>(shift);
    T* py = static_cast<T*>(y);
    parallel_for(0, batch * channels, rows_grain(spatial), [&](int64_t plane_begin, int64_t plane_end) {
      for (int64_t plane = plane_begin; plane < plane_end; ++plane) {
        const T a = pa[plane % channels], b = pb[plane % channels];
        const T* xi = px + plane * spatial;
        const T* ri = pr ? pr + plane * spatial : nullptr;
        T* yi = py + plane * spatial;
        // Four loop bodies rather than branches inside one, so each vectorises.
        if (ri && relu) {
          for (int64_t i = 0; i < spatial; ++i) { const T v = xi[i] * a + b + ri[i]; yi[i] = v > T(0) ? v : T(0); }
        } else if (ri) {
          for (int64_t i = 0; i < spatial; ++i) yi[i] = xi[i] * a + b + ri[i];
        } else if (relu) {
          for (int64_t i = 0; i < spatial; ++i) { const T v = xi[i] * a + b; yi[i] = v > T(0) ? v : T(0); }
        } else {
          for (int64_t i = 0; i < spatial; ++i) yi[i] = xi[i] * a + b;
        }
      }
    });
  });
}

namespace {

Tensor composition(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                   const Tensor& running_var, double eps, const Tensor& residual, bool relu) {
  Tensor mean = running_mean, var = running_var;  // eval mode reads them and writes nothing
  Tensor y = batch_norm(x, weight, bias, mean, var, /*training=*/false, 0.1, eps);
  if (residual.defined()) y = add(y, residual);
  return relu ? ffr::relu(y) : y;
}

}  // namespace

Tensor batch_norm_eval_add_relu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                const Tensor& running_mean, const Tensor& running_var, double eps,
                                const Tensor& residual, bool relu) {
  FFR_CHECK(running_mean.defined() && running_var.defined(),
            "batch_norm_eval_add_relu needs running statistics, got none for x ", x.str());
  const bool fused = x.device().is_cpu() && !needs_grad({&x, &weight, &bias, &residual});
  if (!fused) return composition(x, weight, bias, running_mean, running_var, eps, residual, relu);

  OpScope scope("batch_norm_eval_add_relu(" + x.str() + ")");
  NvtxRange range("batch_norm_eval_add_relu");
  FFR_CHECK(x.ndim() >= 2 && is_floating(x.dtype()), "batch_norm_eval_add_relu expects a floating x [N, C, ...], got ",
            x.str());
  const int64_t channels = x.size(1);
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    FFR_CHECK(!t->defined() || (t->shape() == Shape{channels} && t->dtype() == x.dtype() && t->device() == x.device()),
              "batch_norm_eval_add_relu: per-channel tensor ", t->str(), " should be [", channels, "] ",
              dtype_name(x.dtype()), " for x ", x.str());
  FFR_CHECK(!residual.defined() || (residual.shape() == x.shape() && residual.dtype() == x.dtype() &&
                                    residual.device() == x.device()),
            "batch_norm_eval_add_relu: residual ", residual.str(), " should match x ", x.str());
  int64_t spatial = 1;
  for (int d = 2; d < x.ndim(); ++d) spatial *= x.size(d);

  // The per-channel affine map in double, stored in x's type: y = x a + b with
  // a = weight / sqrt(var + eps), b = bias - mean a (the reference computes (x - mean) a + bias).
  Tensor scale = Tensor::empty({channels}, x.dtype(), x.device());
  Tensor shift = Tensor::empty({channels}, x.dtype(), x.device());
  dispatch_cpu_floating(x.dtype(), "batch_norm_eval_add_relu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    const T* m = running_mean.data<T>();
    const T* v = running_var.data<T>();
    T* a_out = scale.data<T>();
    T* b_out = shift.data<T>();
    for (int64_t c = 0; c < channels; ++c) {
      const double a = (w ? double(w[c]) : 1.0) / std::sqrt(double(v[c]) + eps);
      a_out[c] = T(a);
      b_out[c] = T((b ? double(b[c]) : 0.0) - double(m[c]) * a);
    }
  });
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  batch_norm_eval_add_relu_cpu(x.raw_data(), x.dtype(), x.size(0), channels, spatial, scale.raw_data(),
                               shift.raw_data(), residual.defined() ? residual.raw_data() : nullptr, relu,
                               y.raw_data());
  return y;
}

}  // namespace ffr
