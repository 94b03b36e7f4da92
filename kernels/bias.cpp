#include "kernels/bias.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

#include <algorithm>
#include <vector>

namespace ffr {

// ---- CPU reference ----

void bias_add_cpu(const void* x, const void* bias, void* y, int64_t rows, int64_t columns, DType dtype) {
  dispatch_cpu_floating(dtype, "add_bias", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    const T* pb = static_cast<const T*>(bias);
    T* py = static_cast<T*>(y);
    parallel_for(0, rows, rows_grain(columns), [&](int64_t r_begin, int64_t r_end) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        for (int64_t c = 0; c < columns; ++c) py[r * columns + c] = T(double(px[r * columns + c]) + double(pb[c]));
      }
    });
  });
}

void column_sum_cpu(const void* x, void* out, int64_t rows, int64_t columns, DType dtype) {
  dispatch_cpu_floating(dtype, "column_sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    T* po = static_cast<T*>(out);
    // Threads take blocks of columns and add the rows in order, as one thread would: the same
    // bits on any thread count.
    constexpr int64_t kBlock = 64;
    const int64_t blocks = (columns + kBlock - 1) / kBlock;
    parallel_for(0, blocks, rows_grain(rows * kBlock), [&](int64_t b_begin, int64_t b_end) {
      double acc[kBlock];
      for (int64_t block = b_begin; block < b_end; ++block) {
        const int64_t c0 = block * kBlock, width = std::min(kBlock, columns - c0);
        for (int64_t j = 0; j < width; ++j) acc[j] = 0.0;
        for (int64_t r = 0; r < rows; ++r) {
          const T* xr = px + r * columns + c0;
          for (int64_t j = 0; j < width; ++j) acc[j] += double(xr[j]);
        }
        for (int64_t j = 0; j < width; ++j) po[c0 + j] = T(acc[j]);
      }
    });
  });
}

// ---- dispatch + autograd ----

namespace {

int64_t columns_of(const Tensor& x) { return x.ndim() == 0 ? 1 : x.size(x.ndim() - 1); }

}  // namespace

Tensor column_sum(const Tensor& x) {
  FFR_CHECK(x.defined() && x.ndim() >= 1, "column_sum needs a tensor of at least one axis, got ",
            x.defined() ? x.str() : std::string("an undefined tensor"));
  OpScope scope("column_sum(" + x.str() + ")");
  NvtxRange range("column_sum");
  const int64_t columns = columns_of(x);
  const int64_t rows = columns == 0 ? 0 : x.numel() / columns;
  Tensor out = Tensor::empty({columns}, x.dtype(), x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    Tensor partials = Tensor::empty({column_sum_cuda_slabs(rows) * columns}, DType::Float32, x.device());
    column_sum_cuda(x.raw_data(), out.raw_data(), partials.data<float>(), rows, columns, x.dtype());
  } else
#endif
  {
    column_sum_cpu(x.raw_data(), out.raw_data(), rows, columns, x.dtype());
  }
  if (!needs_grad({&x})) return out;
  // Each row gets the gradient of its column's sum (not on a training step's path: add_bias's
  // backward calls column_sum under no-grad).
  record_op("column_sum", out, {x}, [shape = x.shape()](const Tensor& gy) {
    return std::vector<Tensor>{broadcast_to(gy, shape)};
  });
  return out;
}

Tensor add_bias(const Tensor& x, const Tensor& bias) {
  FFR_CHECK(x.defined() && bias.defined() && x.ndim() >= 1 && bias.ndim() == 1 && bias.size(0) == columns_of(x),
            "add_bias needs x [..., N] and a bias [N], got ", x.defined() ? x.str() : std::string("undefined"), " and ",
            bias.defined() ? bias.str() : std::string("undefined"));
  FFR_CHECK(x.dtype() == bias.dtype() && x.device() == bias.device(), "add_bias: x ", x.str(), " and bias ",
            bias.str(), " differ in dtype or device");
  OpScope scope("add_bias(" + x.str() + ", " + bias.str() + ")");
  NvtxRange range("add_bias");
  const int64_t columns = columns_of(x);
  const int64_t rows = columns == 0 ? 0 : x.numel() / columns;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    bias_add_cuda(x.raw_data(), bias.raw_data(), y.raw_data(), rows, columns, x.dtype());
  } else
#endif
  {
    bias_add_cpu(x.raw_data(), bias.raw_data(), y.raw_data(), rows, columns, x.dtype());
  }
  if (!needs_grad({&x, &bias})) return y;
  // dx is dy itself (autograd copies it before accumulating in place into a shared buffer).
  // A frozen bias (FFR's frozen layers) costs no reduction.
  record_op("add_bias", y, {x, bias}, [bias_grad = needs_grad({&bias})](const Tensor& gy) {
    return std::vector<Tensor>{gy, bias_grad ? column_sum(gy) : Tensor()};
  });
  return y;
}

}  // namespace ffr
