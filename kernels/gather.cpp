#include "kernels/gather.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/dispatch.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace ffr {

namespace {

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

template <typename I>
int64_t checked_index(const I* index, int64_t position, int64_t size) {
  const int64_t j = int64_t(index[position]);
  FFR_CHECK(j >= 0 && j < size, "index ", j, " out of range [0, ", size, ") at index position ", position);
  return j;
}

}  // namespace

GatherIndexer make_gather_indexer(const Shape& x_shape, const Shape& index_shape, int dim) {
  FFR_CHECK(x_shape.size() <= size_t(kMaxGatherDims), "gather supports up to ", kMaxGatherDims,
            " dimensions, got ", shape_str(x_shape));
  GatherIndexer idx;
  idx.ndim = int(x_shape.size());
  idx.dim = dim;
  const Shape xs = contiguous_strides(x_shape), is = contiguous_strides(index_shape);
  for (size_t d = 0; d < x_shape.size(); ++d) {
    idx.x_sizes[d] = x_shape[d];
    idx.x_strides[d] = xs[d];
    idx.index_sizes[d] = index_shape[d];
    idx.index_strides[d] = is[d];
  }
  idx.x_numel = shape_numel(x_shape);
  idx.index_numel = shape_numel(index_shape);
  return idx;
}

// ---- CPU reference ----

void gather_cpu(const void* x, const void* index, void* out, DType dtype, DType index_dtype,
                const GatherIndexer& idx) {
  dispatch_index(index_dtype, "gather", [&](auto itag) {
    using I = typename decltype(itag)::type;
    dispatch_element_size(dtype, "gather", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const I* pi = static_cast<const I*>(index);
      const T* px = static_cast<const T*>(x);
      T* po = static_cast<T*>(out);
      for (int64_t p = 0; p < idx.index_numel; ++p)
        po[p] = px[idx.x_offset(p, checked_index(pi, p, idx.x_sizes[idx.dim]))];
    });
  });
}

void gather_backward_cpu(const void* gy, const void* index, void* gx, DType dtype, DType index_dtype,
                         const GatherIndexer& idx) {
  dispatch_index(index_dtype, "gather backward", [&](auto itag) {
    using I = typename decltype(itag)::type;
    dispatch_cpu_floating(dtype, "gather backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const I* pi = static_cast<const I*>(index);
      const T* pg = static_cast<const T*>(gy);
      T* px = static_cast<T*>(gx);
      std::fill(px, px + idx.x_numel, T(0));
      for (int64_t p = 0; p < idx.index_numel; ++p)
        px[idx.x_offset(p, checked_index(pi, p, idx.x_sizes[idx.dim]))] += pg[p];
    });
  });
}

// Whole rows move at once: a memcpy of inner elements per picked row.
void index_select_cpu(const void* x, const void* index, void* out, DType dtype, DType index_dtype,
                      const IndexSelectShape& s) {
  const size_t row_bytes = size_t(s.inner) * dtype_size(dtype);
  dispatch_index(index_dtype, "index_select", [&](auto itag) {
    using I = typename decltype(itag)::type;
    const I* pi = static_cast<const I*>(index);
    const char* px = static_cast<const char*>(x);
    char* po = static_cast<char*>(out);
    for (int64_t k = 0; k < s.count; ++k) {
      const int64_t j = checked_index(pi, k, s.rows);
      for (int64_t o = 0; o < s.outer; ++o)
        std::memcpy(po + size_t(o * s.count + k) * row_bytes, px + size_t(o * s.rows + j) * row_bytes, row_bytes);
    }
  });
}

void index_select_backward_cpu(const void* gy, const void* index, void* gx, DType dtype, DType index_dtype,
                               const IndexSelectShape& s) {
  dispatch_index(index_dtype, "index_select backward", [&](auto itag) {
    using I = typename decltype(itag)::type;
    dispatch_cpu_floating(dtype, "index_select backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const I* pi = static_cast<const I*>(index);
      const T* pg = static_cast<const T*>(gy);
      T* px = static_cast<T*>(gx);
      std::fill(px, px + s.outer * s.rows * s.inner, T(0));
      for (int64_t o = 0; o < s.outer; ++o) {
        for (int64_t k = 0; k < s.count; ++k) {
          const int64_t j = checked_index(pi, k, s.rows);
          const T* src = pg + (o * s.count + k) * s.inner;
          T* dst = px + (o * s.rows + j) * s.inner;
          for (int64_t i = 0; i < s.inner; ++i) dst[i] += src[i];
        }
      }
    });
  });
}

// ---- dispatch + autograd ----

namespace {

void check_index(const Tensor& x, const Tensor& index) {
  FFR_CHECK(index.dtype() == DType::Int32 || index.dtype() == DType::Int64, "index must be int32 or int64, got ",
            index.str());
  FFR_CHECK(index.device() == x.device(), "index ", index.str(), " is not on the device of ", x.str());
}

int normalized_dim(int dim, const Tensor& x, const char* op) {
  const int n = x.ndim();
  const int d = dim < 0 ? dim + n : dim;
  FFR_CHECK(d >= 0 && d < n, op, ": dim ", dim, " out of range for ", x.str());
  return d;
}

void launch_gather(const Tensor& x, const Tensor& index, Tensor& out, const GatherIndexer& idx) {
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    gather_cuda(x.raw_data(), index.raw_data(), out.raw_data(), x.dtype(), index.dtype(), idx);
    return;
  }
#endif
  gather_cpu(x.raw_data(), index.raw_data(), out.raw_data(), x.dtype(), index.dtype(), idx);
}

Tensor gather_backward(const Tensor& gy, const Tensor& index, const Shape& x_shape, const GatherIndexer& idx) {
  Tensor gx = Tensor::empty(x_shape, gy.dtype(), gy.device());
#ifdef FFR_WITH_CUDA
  if (gy.is_cuda()) {
    gather_backward_cuda(gy.raw_data(), index.raw_data(), gx.raw_data(), gy.dtype(), index.dtype(), idx);
    return gx;
  }
#endif
  gather_backward_cpu(gy.raw_data(), index.raw_data(), gx.raw_data(), gy.dtype(), index.dtype(), idx);
  return gx;
}

void launch_index_select(const Tensor& x, const Tensor& index, Tensor& out, const IndexSelectShape& s) {
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    index_select_cuda(x.raw_data(), index.raw_data(), out.raw_data(), x.dtype(), index.dtype(), s);
    return;
  }
#endif
  index_select_cpu(x.raw_data(), index.raw_data(), out.raw_data(), x.dtype(), index.dtype(), s);
}

Tensor index_select_backward(const Tensor& gy, const Tensor& index, const Shape& x_shape,
                             const IndexSelectShape& s) {
  Tensor gx = Tensor::empty(x_shape, gy.dtype(), gy.device());
#ifdef FFR_WITH_CUDA
  if (gy.is_cuda()) {
    index_select_backward_cuda(gy.raw_data(), index.raw_data(), gx.raw_data(), gy.dtype(), index.dtype(), s);
    return gx;
  }
#endif
  index_select_backward_cpu(gy.raw_data(), index.raw_data(), gx.raw_data(), gy.dtype(), index.dtype(), s);
  return gx;
}

}  // namespace

Tensor gather(const Tensor& x, int dim, const Tensor& index) {
  OpScope scope("gather(" + x.str() + ", dim=" + std::to_string(dim) + ", " + index.str() + ")");
  NvtxRange range("gather");
  const int d = normalized_dim(dim, x, "gather");
  check_index(x, index);
  FFR_CHECK(index.ndim() == x.ndim(), "gather: index ", index.str(), " needs the ndim of ", x.str());
  for (int i = 0; i < x.ndim(); ++i)
    FFR_CHECK(i == d || index.shape()[size_t(i)] <= x.shape()[size_t(i)], "gather: index ", index.str(),
              " is larger than ", x.str(), " in dim ", i);
  const GatherIndexer idx = make_gather_indexer(x.shape(), index.shape(), d);
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  launch_gather(x, index, out, idx);
  record_op("gather", out, {x}, [index = index.detach(), x_shape = x.shape(), idx](const Tensor& gy) {
    return std::vector<Tensor>{gather_backward(gy, index, x_shape, idx)};
  });
  return out;
}

Tensor index_select(const Tensor& x, int dim, const Tensor& index) {
  OpScope scope("index_select(" + x.str() + ", dim=" + std::to_string(dim) + ", " + index.str() + ")");
  NvtxRange range("index_select");
  const int d = normalized_dim(dim, x, "index_select");
  check_index(x, index);
  FFR_CHECK(index.ndim() == 1, "index_select: index must be 1-D, got ", index.str());
  IndexSelectShape s;
  for (int i = 0; i < d; ++i) s.outer *= x.shape()[size_t(i)];
  for (int i = d + 1; i < x.ndim(); ++i) s.inner *= x.shape()[size_t(i)];
  s.rows = x.shape()[size_t(d)];
  s.count = index.numel();
  Shape out_shape = x.shape();
  out_shape[size_t(d)] = s.count;
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  launch_index_select(x, index, out, s);
  record_op("index_select", out, {x}, [index = index.detach(), x_shape = x.shape(), s](const Tensor& gy) {
    return std::vector<Tensor>{index_select_backward(gy, index, x_shape, s)};
  });
  return out;
}

}  // namespace ffr
