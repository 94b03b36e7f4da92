#include "kernels/batch_norm.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"
#include "kernels/lane_sum.h"

#include <cmath>

namespace ffr {

// ---- CPU reference: every sum in double, in lanes (kernels/lane_sum.h) ----
// Channels are independent, so threads take whole channels (or (n, c) planes): each channel's
// sums run in the same order as on one thread, and the results do not depend on the threads.

namespace {

// Element (n, c, i) of x viewed as [N, C, S].
inline int64_t offset(const BatchNormShape& s, int64_t n, int64_t c, int64_t i) {
  return (n * s.channels + c) * s.spatial + i;
}

}  // namespace

void batch_norm_batch_stats_cpu(const void* x, DType x_dtype, const BatchNormShape& s, double momentum, double eps,
                                void* mean, void* invstd, void* running_mean, void* running_var) {
  dispatch_cpu_floating(x_dtype, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    const double count = double(s.per_channel());
    parallel_for(0, s.channels, rows_grain(2 * s.per_channel()), [&](int64_t c_begin, int64_t c_end) {
      for (int64_t c = c_begin; c < c_end; ++c) {
        LaneSums sum;
        for (int64_t n = 0; n < s.batch; ++n) {
          const T* plane = px + offset(s, n, c, 0);
          add_lanes(sum, s.spatial, [plane](int64_t i) { return double(plane[i]); });
        }
        const double m = sum.total() / count;
        // Two passes: the squared deviations, not E[x^2] - m^2, which cancels badly.
        LaneSums squares;
        for (int64_t n = 0; n < s.batch; ++n) {
          const T* plane = px + offset(s, n, c, 0);
          add_lanes(squares, s.spatial, [plane, m](int64_t i) {
            const double d = double(plane[i]) - m;
            return d * d;
          });
        }
        const double sq = squares.total();
        static_cast<T*>(mean)[c] = T(m);
        static_cast<T*>(invstd)[c] = T(1.0 / std::sqrt(sq / count + eps));
        if (running_mean != nullptr) {
          T& r = static_cast<T*>(running_mean)[c];
          r = T((1.0 - momentum) * double(r) + momentum * m);
        }
        if (running_var != nullptr) {
          T& r = static_cast<T*>(running_var)[c];
          r = T((1.0 - momentum) * double(r) + momentum * sq / (count - 1.0));
        }
      }
    });
  });
}

void batch_norm_running_stats_cpu(DType x_dtype, int64_t channels, double eps, const void* running_mean,
                                  const void* running_var, void* mean, void* invstd) {
  dispatch_cpu_floating(x_dtype, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t c = 0; c < channels; ++c) {
      static_cast<T*>(mean)[c] = static_cast<const T*>(running_mean)[c];
      static_cast<T*>(invstd)[c] = T(1.0 / std::sqrt(double(static_cast<const T*>(running_var)[c]) + eps));
    }
  });
}

void batch_norm_normalize_cpu(const void* x, DType x_dtype, const BatchNormShape& s, const void* mean,
                              const void* invstd, const void* weight, const void* bias, void* y) {
  dispatch_cpu_floating(x_dtype, "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    const T* pm = static_cast<const T*>(mean);
    const T* ps = static_cast<const T*>(invstd);
    const T* pw = static_cast<const T*>(weight);
    const T* pb = static_cast<const T*>(bias);
    T* py = static_cast<T*>(y);
    parallel_for(0, s.batch * s.channels, rows_grain(s.spatial), [&](int64_t plane_begin, int64_t plane_end) {
      for (int64_t plane = plane_begin; plane < plane_end; ++plane) {
        const int64_t c = plane % s.channels;
        // y = x a + b per channel, the constants in double and the pass in T (float32 runs
        // twice as many lanes as double).
        const double scale = double(ps[c]) * (pw ? double(pw[c]) : 1.0);
        const T a = T(scale), b = T((pb ? double(pb[c]) : 0.0) - double(pm[c]) * scale);
        const T* xi = px + plane * s.spatial;
        T* yi = py + plane * s.spatial;
        for (int64_t i = 0; i < s.spatial; ++i) yi[i] = xi[i] * a + b;
      }
    });
  });
}

void batch_norm_backward_cpu(const void* dy, const void* x, DType x_dtype, const BatchNormShape& s,
                             const void* mean, const void* invstd, const void* weight, bool batch_stats, void* dx,
                             void* dweight, void* dbias) {
  dispatch_cpu_floating(x_dtype, "batch_norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pdy = static_cast<const T*>(dy);
    const T* px = static_cast<const T*>(x);
    const T* pw = static_cast<const T*>(weight);
    const double count = double(s.per_channel());
    parallel_for(0, s.channels, rows_grain(3 * s.per_channel()), [&](int64_t c_begin, int64_t c_end) {
      for (int64_t c = c_begin; c < c_end; ++c) {
        const double m = double(static_cast<const T*>(mean)[c]);
        const double is = double(static_cast<const T*>(invstd)[c]);
        // sum(dy xhat) = invstd sum(dy (x - mean)): the scale leaves the loop.
        LaneSums sum_dy, sum_dy_centered;
        for (int64_t n = 0; n < s.batch; ++n) {
          const T* gy = pdy + offset(s, n, c, 0);
          const T* xi = px + offset(s, n, c, 0);
          add_lanes(sum_dy, s.spatial, [gy](int64_t i) { return double(gy[i]); });
          add_lanes(sum_dy_centered, s.spatial, [gy, xi, m](int64_t i) { return double(gy[i]) * (double(xi[i]) - m); });
        }
        const double total_dy = sum_dy.total(), total_dy_xhat = sum_dy_centered.total() * is;
        if (dweight != nullptr) static_cast<T*>(dweight)[c] = T(total_dy_xhat);
        if (dbias != nullptr) static_cast<T*>(dbias)[c] = T(total_dy);
        if (dx == nullptr) continue;
        const double scale = is * (pw ? double(pw[c]) : 1.0);
        const double mean_dy = batch_stats ? total_dy / count : 0.0;
        const double mean_dy_xhat = batch_stats ? total_dy_xhat / count : 0.0;
        // dx = scale (dy - mean_dy - (x - m) is mean_dy_xhat) = k_dy dy + k_x x + k, the
        // per-channel constants in double and the pass in T (float32 runs twice the lanes).
        const double slope = is * mean_dy_xhat;
        const T k_dy = T(scale), k_x = T(-scale * slope), k = T(scale * (m * slope - mean_dy));
        for (int64_t n = 0; n < s.batch; ++n) {
          const T* gy = pdy + offset(s, n, c, 0);
          const T* xi = px + offset(s, n, c, 0);
          T* gx = static_cast<T*>(dx) + offset(s, n, c, 0);
          for (int64_t i = 0; i < s.spatial; ++i) gx[i] = k_dy * gy[i] + k_x * xi[i] + k;
        }
      }
    });
  });
}

// ---- dispatch + autograd ----

namespace {

void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

// A per-channel tensor [C]: float32 on CUDA (whatever x's type), x's dtype on CPU.
void check_channel_tensor(const Tensor& t, const char* what, const Tensor& x, DType stat_dtype) {
  if (!t.defined()) return;
  FFR_CHECK(t.shape() == Shape{x.size(1)}, "batch_norm: ", what, " ", t.str(), " should be [", x.size(1),
            "] for x ", x.str());
  FFR_CHECK(t.device() == x.device(), "batch_norm: ", what, " ", t.str(), " is on another device than x ", x.str());
  FFR_CHECK(t.dtype() == stat_dtype, "batch_norm: ", what, " ", t.str(), " should be ", dtype_name(stat_dtype),
            " for x ", x.str());
}

void batch_stats(const Tensor& x, const BatchNormShape& s, double momentum, double eps, Tensor& mean,
                 Tensor& invstd, Tensor& running_mean, Tensor& running_var) {
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    batch_norm_batch_stats_cuda(x.raw_data(), x.dtype(), s, momentum, eps, mean.raw_data(), invstd.raw_data(),
                                data_or_null(running_mean), data_or_null(running_var));
    return;
  }
#endif
  batch_norm_batch_stats_cpu(x.raw_data(), x.dtype(), s, momentum, eps, mean.raw_data(), invstd.raw_data(),
                             data_or_null(running_mean), data_or_null(running_var));
}

void running_stats(const Tensor& x, const BatchNormShape& s, double eps, const Tensor& running_mean,
                   const Tensor& running_var, Tensor& mean, Tensor& invstd) {
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    batch_norm_running_stats_cuda(x.dtype(), s.channels, eps, running_mean.raw_data(), running_var.raw_data(),
                                  mean.raw_data(), invstd.raw_data());
    return;
  }
#endif
  batch_norm_running_stats_cpu(x.dtype(), s.channels, eps, running_mean.raw_data(), running_var.raw_data(),
                               mean.raw_data(), invstd.raw_data());
}

void normalize(const Tensor& x, const BatchNormShape& s, const Tensor& mean, const Tensor& invstd,
               const Tensor& weight, const Tensor& bias, Tensor& y) {
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    batch_norm_normalize_cuda(x.raw_data(), x.dtype(), s, mean.raw_data(), invstd.raw_data(), data_or_null(weight),
                              data_or_null(bias), y.raw_data());
    return;
  }
#endif
  batch_norm_normalize_cpu(x.raw_data(), x.dtype(), s, mean.raw_data(), invstd.raw_data(), data_or_null(weight),
                           data_or_null(bias), y.raw_data());
}

void backward(const Tensor& dy, const Tensor& x, const BatchNormShape& s, const Tensor& mean, const Tensor& invstd,
              const Tensor& weight, bool batch_stats, Tensor& dx, Tensor& dweight, Tensor& dbias) {
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    batch_norm_backward_cuda(dy.raw_data(), x.raw_data(), x.dtype(), s, mean.raw_data(), invstd.raw_data(),
                             data_or_null(weight), batch_stats, data_or_null(dx), data_or_null(dweight),
                             data_or_null(dbias));
    return;
  }
#endif
  batch_norm_backward_cpu(dy.raw_data(), x.raw_data(), x.dtype(), s, mean.raw_data(), invstd.raw_data(),
                          data_or_null(weight), batch_stats, data_or_null(dx), data_or_null(dweight),
                          data_or_null(dbias));
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, double momentum, double eps) {
  OpScope scope("batch_norm(" + x.str() + (training ? ", training" : ", eval") + ")");
  NvtxRange range("batch_norm");
  FFR_CHECK(x.ndim() >= 2, "batch_norm expects x [N, C, ...], got ", x.str());
  FFR_CHECK(is_floating(x.dtype()), "batch_norm expects a floating x, got ", x.str());
  const DType stat_dtype = x.is_cuda() ? DType::Float32 : x.dtype();
  check_channel_tensor(weight, "weight", x, stat_dtype);
  check_channel_tensor(bias, "bias", x, stat_dtype);
  check_channel_tensor(running_mean, "running_mean", x, stat_dtype);
  check_channel_tensor(running_var, "running_var", x, stat_dtype);
  FFR_CHECK(running_mean.defined() == running_var.defined(),
            "batch_norm: give both running_mean and running_var or neither");
  FFR_CHECK(eps > 0.0, "batch_norm: eps must be > 0, got ", eps);

  BatchNormShape s;
  s.batch = x.size(0);
  s.channels = x.size(1);
  s.spatial = 1;
  for (int d = 2; d < x.ndim(); ++d) s.spatial *= x.size(d);
  const bool use_batch_stats = training || !running_mean.defined();
  // The unbiased variance (and a meaningful normalisation) needs two values per channel.
  FFR_CHECK(!use_batch_stats || s.per_channel() > 1, "batch_norm: expected more than 1 value per channel when ",
            "using batch statistics, got x ", x.str());

  Tensor mean = Tensor::empty({s.channels}, stat_dtype, x.device());
  Tensor invstd = Tensor::empty({s.channels}, stat_dtype, x.device());
  if (use_batch_stats) {
    Tensor no_stats;
    batch_stats(x, s, momentum, eps, mean, invstd, training ? running_mean : no_stats,
                training ? running_var : no_stats);
  } else {
    running_stats(x, s, eps, running_mean, running_var, mean, invstd);
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  normalize(x, s, mean, invstd, weight, bias, y);

  if (!needs_grad({&x, &weight, &bias})) return y;
  const bool grad_x = needs_grad({&x}), grad_w = needs_grad({&weight}), grad_b = needs_grad({&bias});
  record_op("batch_norm", y, {x, weight, bias},
            [s, use_batch_stats, grad_x, grad_w, grad_b, stat_dtype, x_saved = x.detach(),
             w_saved = weight.defined() ? weight.detach() : Tensor(), mean, invstd](const Tensor& gy) {
              const Device device = x_saved.device();
              Tensor dx = grad_x ? Tensor::empty(x_saved.shape(), x_saved.dtype(), device) : Tensor();
              Tensor dw = grad_w ? Tensor::empty({s.channels}, stat_dtype, device) : Tensor();
              Tensor db = grad_b ? Tensor::empty({s.channels}, stat_dtype, device) : Tensor();
              backward(gy, x_saved, s, mean, invstd, w_saved, use_batch_stats, dx, dw, db);
              return std::vector<Tensor>{dx, dw, db};
            });
  return y;
}

}  // namespace ffr
