#include "kernels/layer_norm.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"
#include "kernels/lane_sum.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ffr {

// ---- CPU reference (double accumulation: the reference should be the accurate side; row sums in
// lanes, kernels/lane_sum.h) ----

void layer_norm_forward_cpu(const void* x, const void* weight, const void* bias, void* y, void* mean, void* rstd,
                            int64_t rows, int64_t cols, DType dtype, double eps) {
  dispatch_cpu_floating(dtype, "layer_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    const T* pw = static_cast<const T*>(weight);
    const T* pb = static_cast<const T*>(bias);
    T* py = static_cast<T*>(y);
    parallel_for(0, rows, rows_grain(3 * cols), [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r = r_begin; r < r_end; ++r) {
      const T* xr = px + r * cols;
      const double m = lane_sum(cols, [xr](int64_t c) { return double(xr[c]); }) / double(cols);
      // Two passes (mean, then squared deviations): no cancellation for rows far from zero.
      const double v = lane_sum(cols, [xr, m](int64_t c) { return (double(xr[c]) - m) * (double(xr[c]) - m); });
      const double rs = 1.0 / std::sqrt(v / double(cols) + eps);
      for (int64_t c = 0; c < cols; ++c) {
        double out = (double(xr[c]) - m) * rs;
        if (pw) out *= double(pw[c]);
        if (pb) out += double(pb[c]);
        py[r * cols + c] = T(out);
      }
      static_cast<T*>(mean)[r] = T(m);
      static_cast<T*>(rstd)[r] = T(rs);
    }
    });
  });
}

// With g = dy * weight and xhat = (x - mean) * rstd:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dweight = sum_rows dy * xhat,  dbias = sum_rows dy.
void layer_norm_backward_cpu(const void* dy, const void* x, const void* weight, const void* mean, const void* rstd,
                             void* dx, void* dweight, void* dbias, int64_t rows, int64_t cols, DType dtype) {
  dispatch_cpu_floating(dtype, "layer_norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pdy = static_cast<const T*>(dy);
    const T* px = static_cast<const T*>(x);
    const T* pw = static_cast<const T*>(weight);
    const T* pm = static_cast<const T*>(mean);
    const T* prs = static_cast<const T*>(rstd);
    // dx: threads take whole rows. dweight, dbias: sums over rows, so threads take blocks of
    // columns and add the rows in order, as one thread would (the same bits on any thread count).
    if (dx) {
      parallel_for(0, rows, rows_grain(4 * cols), [&](int64_t r_begin, int64_t r_end) {
        for (int64_t r = r_begin; r < r_end; ++r) {
          const T* dyr = pdy + r * cols;
          const T* xr = px + r * cols;
          const double m = double(pm[r]), rs = double(prs[r]);
          auto g_at = [dyr, pw](int64_t c) { return double(dyr[c]) * (pw ? double(pw[c]) : 1.0); };
          const double sum_g = lane_sum(cols, g_at);
          const double sum_g_xhat = lane_sum(cols, [&](int64_t c) { return g_at(c) * ((double(xr[c]) - m) * rs); });
          const double mean_g = sum_g / double(cols), mean_g_xhat = sum_g_xhat / double(cols);
          T* dxr = static_cast<T*>(dx) + r * cols;
          for (int64_t c = 0; c < cols; ++c) {
            const double xhat = (double(xr[c]) - m) * rs;
            const double g = double(dyr[c]) * (pw ? double(pw[c]) : 1.0);
            dxr[c] = T(rs * (g - mean_g - xhat * mean_g_xhat));
          }
        }
      });
    }
    if (!dweight && !dbias) return;
    constexpr int64_t kBlock = 64;  // columns per block: a cache line or more of each row
    const int64_t blocks = (cols + kBlock - 1) / kBlock;
    parallel_for(0, blocks, rows_grain(2 * rows * kBlock), [&](int64_t b_begin, int64_t b_end) {
      double sum_w[kBlock], sum_b[kBlock];
      for (int64_t block = b_begin; block < b_end; ++block) {
        const int64_t c0 = block * kBlock, width = std::min(kBlock, cols - c0);
        for (int64_t j = 0; j < width; ++j) sum_w[j] = sum_b[j] = 0.0;
        for (int64_t r = 0; r < rows; ++r) {
          const T* dyr = pdy + r * cols + c0;
          const T* xr = px + r * cols + c0;
          const double m = double(pm[r]), rs = double(prs[r]);
          for (int64_t j = 0; j < width; ++j) {
            sum_w[j] += double(dyr[j]) * ((double(xr[j]) - m) * rs);
            sum_b[j] += double(dyr[j]);
          }
        }
        for (int64_t j = 0; j < width; ++j) {
          if (dweight) static_cast<T*>(dweight)[c0 + j] = T(sum_w[j]);
          if (dbias) static_cast<T*>(dbias)[c0 + j] = T(sum_b[j]);
        }
      }
    });
  });
}

// ---- dispatch + autograd ----

namespace {

void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

void check_parameter(const Tensor& p, const char* what, const Tensor& x) {
  if (!p.defined()) return;
  FFR_CHECK(p.ndim() == 1 && p.size(0) == x.size(-1), "layer_norm: ", what, " ", p.str(), " must be [",
            x.size(-1), "] for input ", x.str());
  FFR_CHECK(p.dtype() == x.dtype(), "layer_norm: ", what, " ", p.str(), " and input ", x.str(), " differ in dtype");
  FFR_CHECK(p.device() == x.device(), "layer_norm: ", what, " ", p.str(), " and input ", x.str(), " differ in device");
}

bool wants_grad(const Tensor& t) { return t.defined() && needs_grad({&t}); }

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  OpScope scope("layer_norm(" + x.str() + ", " + weight.str() + ", " + bias.str() + ")");
  NvtxRange range("layer_norm");
  FFR_CHECK(x.ndim() >= 1 && x.size(-1) > 0, "layer_norm needs a non-empty last dimension, got ", x.str());
  FFR_CHECK(eps >= 0.0, "layer_norm: eps must be >= 0, got ", eps);
  check_parameter(weight, "weight", x);
  check_parameter(bias, "bias", x);
  const int64_t cols = x.size(-1), rows = x.numel() / cols;
  const DType stats_dtype = x.is_cuda() ? DType::Float32 : x.dtype();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({rows}, stats_dtype, x.device());
  Tensor rstd = Tensor::empty({rows}, stats_dtype, x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    layer_norm_forward_cuda(x.raw_data(), data_or_null(weight), data_or_null(bias), y.raw_data(), mean.raw_data(),
                            rstd.raw_data(), rows, cols, x.dtype(), eps);
  } else
#endif
  {
    layer_norm_forward_cpu(x.raw_data(), data_or_null(weight), data_or_null(bias), y.raw_data(), mean.raw_data(),
                           rstd.raw_data(), rows, cols, x.dtype(), eps);
  }
  if (!needs_grad({&x, &weight, &bias})) return y;
  const bool want_dx = wants_grad(x), want_dweight = wants_grad(weight), want_dbias = wants_grad(bias);
  record_op("layer_norm", y, {x, weight, bias},
            [xd = x.detach(), wd = weight.defined() ? weight.detach() : Tensor(), mean, rstd, rows, cols, want_dx,
             want_dweight, want_dbias](const Tensor& gy) {
              OpScope scope("layer_norm backward(" + gy.str() + ")");
              FFR_CHECK(gy.dtype() == xd.dtype() && gy.shape() == xd.shape(), "layer_norm backward: gradient ",
                        gy.str(), " for output of ", xd.str());
              Tensor dx = want_dx ? Tensor::empty(xd.shape(), xd.dtype(), xd.device()) : Tensor();
              Tensor dweight = want_dweight ? Tensor::empty({cols}, xd.dtype(), xd.device()) : Tensor();
              Tensor dbias = want_dbias ? Tensor::empty({cols}, xd.dtype(), xd.device()) : Tensor();
#ifdef FFR_WITH_CUDA
              if (xd.is_cuda()) {
                layer_norm_backward_cuda(gy.raw_data(), xd.raw_data(), data_or_null(wd), mean.raw_data(),
                                         rstd.raw_data(), data_or_null(dx), data_or_null(dweight),
                                         data_or_null(dbias), rows, cols, xd.dtype());
                return std::vector<Tensor>{dx, dweight, dbias};
              }
#endif
              layer_norm_backward_cpu(gy.raw_data(), xd.raw_data(), data_or_null(wd), mean.raw_data(),
                                      rstd.raw_data(), data_or_null(dx), data_or_null(dweight), data_or_null(dbias),
                                      rows, cols, xd.dtype());
              return std::vector<Tensor>{dx, dweight, dbias};
            });
  return y;
}

}  // namespace ffr
