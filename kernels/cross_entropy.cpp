#include "kernels/cross_entropy.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"
#include "kernels/reduce.h"

#include <cmath>
#include <limits>

namespace ffr {

// ---- CPU reference (row maxima and sums in double) ----

void cross_entropy_forward_cpu(const void* logits, const void* labels, void* loss, void* lse, DType dtype,
                               DType label_dtype, int64_t n, int64_t c) {
  dispatch_index(label_dtype, "cross_entropy", [&](auto label_tag) {
    using L = typename decltype(label_tag)::type;
    const L* pl = static_cast<const L*>(labels);
    // All labels are checked before anything is written.
    for (int64_t i = 0; i < n; ++i)
      FFR_CHECK(pl[i] >= 0 && int64_t(pl[i]) < c, "label ", int64_t(pl[i]), " of sample ", i, " is outside [0, ", c, ")");
    dispatch_cpu_floating(dtype, "cross_entropy", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = static_cast<const T*>(logits);
      T* ploss = static_cast<T*>(loss);
      T* plse = static_cast<T*>(lse);
      parallel_for(0, n, rows_grain(2 * c), [&](int64_t i_begin, int64_t i_end) {
      for (int64_t i = i_begin; i < i_end; ++i) {
        const T* row = px + i * c;
        double max = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < c; ++j) max = std::fmax(max, double(row[j]));
        double sum = 0.0;
        for (int64_t j = 0; j < c; ++j) sum += std::exp(double(row[j]) - max);
        const double log_sum = std::log(sum);
        plse[i] = T(max + log_sum);
        // (max - target) + log_sum keeps the digits of a small loss (a confident right answer).
        ploss[i] = T((max - double(row[pl[i]])) + log_sum);
      }
      });
    });
  });
}

void cross_entropy_backward_cpu(const void* logits, const void* labels, const void* lse, const void* grad_loss,
                                int64_t grad_stride, double scale, void* grad_logits, DType dtype,
                                DType label_dtype, int64_t n, int64_t c) {
  dispatch_index(label_dtype, "cross_entropy backward", [&](auto label_tag) {
    using L = typename decltype(label_tag)::type;
    const L* pl = static_cast<const L*>(labels);
    dispatch_cpu_floating(dtype, "cross_entropy backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = static_cast<const T*>(logits);
      const T* plse = static_cast<const T*>(lse);
      const T* pg = static_cast<const T*>(grad_loss);
      T* pdx = static_cast<T*>(grad_logits);
      parallel_for(0, n, rows_grain(c), [&](int64_t i_begin, int64_t i_end) {
      for (int64_t i = i_begin; i < i_end; ++i) {
        const double g = double(pg[i * grad_stride]) * scale;
        const double row_lse = double(plse[i]);
        const int64_t label = int64_t(pl[i]);
        for (int64_t j = 0; j < c; ++j) {
          const double p = std::exp(double(px[i * c + j]) - row_lse);
          pdx[i * c + j] = T((p - (j == label ? 1.0 : 0.0)) * g);
        }
      }
      });
    });
  });
}

// ---- dispatch + autograd ----

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction) {
  OpScope scope("cross_entropy(" + logits.str() + ", " + labels.str() + ")");
  NvtxRange range("cross_entropy");
  FFR_CHECK(logits.ndim() == 2, "logits must be [N,C], got ", logits.str());
  FFR_CHECK(is_floating(logits.dtype()), "logits must be floating point, got ", logits.str());
  const int64_t n = logits.size(0), c = logits.size(1);
  FFR_CHECK(c > 0, "logits need at least one class, got ", logits.str());
  FFR_CHECK(labels.ndim() == 1 && labels.size(0) == n, "labels must be [", n, "], got ", labels.str());
  FFR_CHECK(labels.dtype() == DType::Int64 || labels.dtype() == DType::Int32, "labels must be int64 or int32, got ",
            labels.str());
  FFR_CHECK(labels.device() == logits.device(), "device mismatch: ", logits.str(), " and ", labels.str());

  const DType dtype = logits.dtype();
  Tensor losses = Tensor::empty({n}, dtype, logits.device());
  Tensor lse = Tensor::empty({n}, dtype == DType::Float64 ? DType::Float64 : DType::Float32, logits.device());
  if (n > 0) {
#ifdef FFR_WITH_CUDA
    if (logits.is_cuda()) {
      cross_entropy_forward_cuda(logits.raw_data(), labels.raw_data(), losses.raw_data(), lse.raw_data(), dtype,
                                 labels.dtype(), n, c);
    } else
#endif
    {
      cross_entropy_forward_cpu(logits.raw_data(), labels.raw_data(), losses.raw_data(), lse.raw_data(), dtype,
                                labels.dtype(), n, c);
    }
  }
  // The reduction runs on the device (a fixed-order sum); its gradient is folded into this op's
  // backward (grad_stride 0, scale 1/N), so one node covers the whole loss.
  Tensor out = reduction == Reduction::None ? losses : reduction == Reduction::Sum ? sum(losses) : mean(losses);
  if (!needs_grad({&logits})) return out;
  const int64_t grad_stride = reduction == Reduction::None ? 1 : 0;
  const double scale = reduction == Reduction::Mean && n > 0 ? 1.0 / double(n) : 1.0;
  record_op("cross_entropy", out, {logits},
            [x = logits.detach(), y = labels.detach(), lse, grad_stride, scale](const Tensor& gy) {
              FFR_CHECK(gy.dtype() == x.dtype() && gy.numel() == (grad_stride == 1 ? x.size(0) : 1),
                        "upstream gradient ", gy.str(), " for logits ", x.str());
              Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
              if (x.numel() == 0) return std::vector<Tensor>{dx};
#ifdef FFR_WITH_CUDA
              if (x.is_cuda()) {
                cross_entropy_backward_cuda(x.raw_data(), y.raw_data(), lse.raw_data(), gy.raw_data(), grad_stride,
                                            scale, dx.raw_data(), x.dtype(), y.dtype(), x.size(0), x.size(1));
                return std::vector<Tensor>{dx};
              }
#endif
              cross_entropy_backward_cpu(x.raw_data(), y.raw_data(), lse.raw_data(), gy.raw_data(), grad_stride,
                                         scale, dx.raw_data(), x.dtype(), y.dtype(), x.size(0), x.size(1));
              return std::vector<Tensor>{dx};
            });
  return out;
}

}  // namespace ffr
