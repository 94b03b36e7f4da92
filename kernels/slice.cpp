#include "kernels/slice.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"

#include <cstring>
#include <memory>
#include <string>

namespace ffr {

// Rows are contiguous runs of inner * element-size bytes, so the reference is a memcpy per row.
void copy_rows_cpu(const void* src, void* dst, DType dtype, const RowCopy& c) {
  const size_t row_bytes = size_t(c.inner) * dtype_size(dtype);
  if (row_bytes == 0) return;
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  for (int64_t o = 0; o < c.outer; ++o) {
    for (int64_t r = 0; r < c.count; ++r) {
      const int64_t src_row = o * c.src_rows + c.src_start + r * c.src_step;
      const int64_t dst_row = o * c.dst_rows + c.dst_start + r * c.dst_step;
      std::memcpy(d + size_t(dst_row) * row_bytes, s + size_t(src_row) * row_bytes, row_bytes);
    }
  }
}

void copy_rows(const Tensor& src, Tensor& dst, const RowCopy& copy) {
  FFR_CHECK(src.dtype() == dst.dtype(), "copy_rows: dtype mismatch: ", src.str(), " into ", dst.str());
  FFR_CHECK(src.device() == dst.device(), "copy_rows: device mismatch: ", src.str(), " into ", dst.str());
#ifdef FFR_WITH_CUDA
  if (src.is_cuda()) {
    copy_rows_cuda(src.raw_data(), dst.raw_data(), src.dtype(), copy);
    return;
  }
#endif
  copy_rows_cpu(src.raw_data(), dst.raw_data(), src.dtype(), copy);
}

namespace {

// Python's clamping of a slice bound for a positive step.
int64_t clamp_bound(int64_t bound, int64_t size) {
  if (bound < 0) bound += size;
  if (bound < 0) return 0;
  return bound > size ? size : bound;
}

// Shares x's storage, starting `offset` elements in.
Tensor contiguous_view(const Tensor& x, int64_t offset, const Shape& shape) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.impl()->storage;
  impl->offset_bytes = x.impl()->offset_bytes + size_t(offset) * dtype_size(x.dtype());
  impl->shape = shape;
  impl->dtype = x.dtype();
  impl->device = x.device();
  return Tensor(std::move(impl));
}

}  // namespace

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step) {
  OpScope scope("slice(" + x.str() + ", dim=" + std::to_string(dim) + ", " + std::to_string(start) + ":" +
                std::to_string(end) + ":" + std::to_string(step) + ")");
  NvtxRange range("slice");
  const int n = x.ndim();
  const int d = dim < 0 ? dim + n : dim;
  FFR_CHECK(d >= 0 && d < n, "slice: dim ", dim, " out of range for ", x.str());
  FFR_CHECK(step >= 1, "slice: step must be >= 1, got ", step);
  const Shape& shape = x.shape();
  const int64_t size = shape[size_t(d)];
  start = clamp_bound(start, size);
  end = clamp_bound(end, size);
  const int64_t count = start < end ? (end - start + step - 1) / step : 0;

  RowCopy copy;
  for (int i = 0; i < d; ++i) copy.outer *= shape[size_t(i)];
  for (int i = d + 1; i < n; ++i) copy.inner *= shape[size_t(i)];
  copy.count = count;
  copy.src_rows = size;
  copy.src_start = start;
  copy.src_step = step;
  copy.dst_rows = count;

  Shape out_shape = shape;
  out_shape[size_t(d)] = count;
  Tensor out;
  if (count > 0 && copy.outer == 1 && (step == 1 || count == 1)) {
    out = contiguous_view(x, start * copy.inner, out_shape);
  } else {
    out = Tensor::empty(out_shape, x.dtype(), x.device());
    copy_rows(x, out, copy);
  }
  if (!needs_grad({&x})) return out;
  // Backward: the same rows, copied the other way into zeros.
  RowCopy back = copy;
  std::swap(back.src_rows, back.dst_rows);
  std::swap(back.src_start, back.dst_start);
  std::swap(back.src_step, back.dst_step);
  record_op("slice", out, {x}, [back, shape](const Tensor& gy) {
    Tensor gx = Tensor::zeros(shape, gy.dtype(), gy.device());
    copy_rows(gy, gx, back);
    return std::vector<Tensor>{gx};
  });
  return out;
}

}  // namespace ffr
