#include "kernels/softmax.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"

#include <cmath>
#include <limits>

namespace ffr {

// ---- CPU reference: max and sums in double (the reference should be the accurate side) ----
// Threads take whole rows (one (outer, inner) position each): a row's sums keep their order.

void softmax_forward_cpu(const void* x, void* y, DType dtype, int64_t outer, int64_t dim, int64_t inner, bool log) {
  dispatch_cpu_floating(dtype, log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    parallel_for(0, outer * inner, rows_grain(3 * dim), [&](int64_t r_begin, int64_t r_end) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        const int64_t o = r / inner, i = r % inner;
        const T* xr = px + o * dim * inner + i;
        T* yr = py + o * dim * inner + i;
        double max = -std::numeric_limits<double>::infinity();
        for (int64_t d = 0; d < dim; ++d) max = std::fmax(max, double(xr[d * inner]));
        double sum = 0.0;
        for (int64_t d = 0; d < dim; ++d) sum += std::exp(double(xr[d * inner]) - max);
        const double log_sum = std::log(sum);
        for (int64_t d = 0; d < dim; ++d) {
          const double shifted = double(xr[d * inner]) - max;
          yr[d * inner] = T(log ? shifted - log_sum : std::exp(shifted) / sum);
        }
      }
    });
  });
}

void softmax_backward_cpu(const void* y, const void* dy, void* dx, DType dtype, int64_t outer, int64_t dim,
                          int64_t inner, bool log) {
  dispatch_cpu_floating(dtype, log ? "log_softmax backward" : "softmax backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* py = static_cast<const T*>(y);
    const T* pdy = static_cast<const T*>(dy);
    T* pdx = static_cast<T*>(dx);
    parallel_for(0, outer * inner, rows_grain(2 * dim), [&](int64_t r_begin, int64_t r_end) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        const int64_t o = r / inner, i = r % inner;
        const int64_t base = o * dim * inner + i;
        double dot = 0.0;  // softmax: sum(dy * y); log_softmax: sum(dy)
        for (int64_t d = 0; d < dim; ++d) {
          const int64_t at = base + d * inner;
          dot += log ? double(pdy[at]) : double(pdy[at]) * double(py[at]);
        }
        for (int64_t d = 0; d < dim; ++d) {
          const int64_t at = base + d * inner;
          const double yv = double(py[at]), g = double(pdy[at]);
          pdx[at] = T(log ? g - std::exp(yv) * dot : yv * (g - dot));
        }
      }
    });
  });
}

// ---- dispatch + autograd ----

namespace {

struct SoftmaxView {
  int64_t outer = 1, dim = 1, inner = 1;
};

SoftmaxView view_over(const Tensor& x, int axis) {
  const int ndim = x.ndim();
  FFR_CHECK(ndim >= 1, "needs at least one dimension, got ", x.str());
  const int a = axis < 0 ? axis + ndim : axis;
  FFR_CHECK(a >= 0 && a < ndim, "axis ", axis, " out of range for ", x.str());
  SoftmaxView v;
  for (int d = 0; d < ndim; ++d) {
    if (d < a) v.outer *= x.shape()[size_t(d)];
    if (d > a) v.inner *= x.shape()[size_t(d)];
  }
  v.dim = x.shape()[size_t(a)];
  return v;
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy, const SoftmaxView& v, bool log) {
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
  if (y.numel() == 0) return dx;
#ifdef FFR_WITH_CUDA
  if (y.is_cuda()) {
    softmax_backward_cuda(y.raw_data(), dy.raw_data(), dx.raw_data(), y.dtype(), v.outer, v.dim, v.inner, log);
    return dx;
  }
#endif
  softmax_backward_cpu(y.raw_data(), dy.raw_data(), dx.raw_data(), y.dtype(), v.outer, v.dim, v.inner, log);
  return dx;
}

Tensor softmax_op(const Tensor& x, int axis, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  OpScope scope(std::string(name) + "(" + x.str() + ", axis " + std::to_string(axis) + ")");
  NvtxRange range(name);
  FFR_CHECK(is_floating(x.dtype()), name, " needs a floating-point tensor, got ", x.str());
  const SoftmaxView v = view_over(x, axis);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) {
#ifdef FFR_WITH_CUDA
    if (x.is_cuda()) {
      softmax_forward_cuda(x.raw_data(), y.raw_data(), x.dtype(), v.outer, v.dim, v.inner, log);
    } else
#endif
    {
      softmax_forward_cpu(x.raw_data(), y.raw_data(), x.dtype(), v.outer, v.dim, v.inner, log);
    }
  }
  if (!needs_grad({&x})) return y;
  // Both gradients need only the output, so the input is not kept alive.
  record_op(name, y, {x}, [y_saved = y.detach(), v, log](const Tensor& dy) {
    return std::vector<Tensor>{softmax_backward(y_saved, dy, v, log)};
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int axis) { return softmax_op(x, axis, false); }
Tensor log_softmax(const Tensor& x, int axis) { return softmax_op(x, axis, true); }

}  // namespace ffr
