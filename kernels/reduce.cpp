#include "kernels/reduce.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"

#include <algorithm>

namespace ffr {

namespace {
constexpr int64_t kReduceChunk = 32768;
}  // namespace

void reduce_sum_cpu(const void* in, void* out, DType dtype, const ReduceIndexer& idx, double scale) {
  dispatch_cpu_floating(dtype, "sum", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pin = static_cast<const T*>(in);
    T* pout = static_cast<T*>(out);
    // double accumulation: the reference should be the accurate side.
    if (idx.outputs >= 4 || idx.reduced < 2 * kReduceChunk) {
      // Threads take whole outputs; each output's sum runs in order.
      parallel_for(0, idx.outputs, rows_grain(idx.reduced), [&](int64_t o_begin, int64_t o_end) {
        for (int64_t o = o_begin; o < o_end; ++o) {
          const int64_t base = idx.base(o);
          double acc = 0.0;
          for (int64_t r = 0; r < idx.reduced; ++r) acc += double(pin[base + idx.inner(r)]);
          pout[o] = T(acc * scale);
        }
      });
      return;
    }
    // A few long sums (a loss, a norm): fixed chunks of kReduceChunk added in chunk order, so the
    // bits do not depend on the thread count.
    for (int64_t o = 0; o < idx.outputs; ++o) {
      const int64_t base = idx.base(o);
      const double acc = parallel_sum<double>(0, idx.reduced, kReduceChunk, [&](int64_t r_begin, int64_t r_end) {
        double partial = 0.0;
        for (int64_t r = r_begin; r < r_end; ++r) partial += double(pin[base + idx.inner(r)]);
        return partial;
      });
      pout[o] = T(acc * scale);
    }
  });
}

namespace {

std::vector<bool> reduced_mask(int ndim, std::vector<int> axes) {
  std::vector<bool> mask(size_t(ndim), axes.empty());
  for (int axis : axes) {
    const int a = axis < 0 ? axis + ndim : axis;
    FFR_CHECK(a >= 0 && a < ndim, "axis ", axis, " out of range for ", ndim, " dimensions");
    FFR_CHECK(!mask[size_t(a)], "axis ", axis, " given twice");
    mask[size_t(a)] = true;
  }
  return mask;
}

ReduceIndexer make_reduce_indexer(const Shape& shape, const std::vector<bool>& mask) {
  FFR_CHECK(shape.size() <= size_t(kMaxReduceDims), "reductions support up to ", kMaxReduceDims,
            " dimensions, got ", shape_str(shape));
  ReduceIndexer idx;
  int64_t stride = 1;
  std::vector<int64_t> strides(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (mask[i]) {
      idx.reduced_sizes[idx.reduced_ndim] = shape[i];
      idx.reduced_strides[idx.reduced_ndim++] = strides[i];
      idx.reduced *= shape[i];
    } else {
      idx.kept_sizes[idx.kept_ndim] = shape[i];
      idx.kept_strides[idx.kept_ndim++] = strides[i];
      idx.outputs *= shape[i];
    }
  }
  return idx;
}

// Sums x over mask; the result has shape `out_shape` (numel = product of kept dims).
Tensor reduce_sum(const Tensor& x, const std::vector<bool>& mask, const Shape& out_shape, double scale) {
  ReduceIndexer idx = make_reduce_indexer(x.shape(), mask);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    reduce_sum_cuda(x.raw_data(), out.raw_data(), x.dtype(), idx, scale);
    return out;
  }
#endif
  reduce_sum_cpu(x.raw_data(), out.raw_data(), x.dtype(), idx, scale);
  return out;
}

Tensor sum_or_mean(const Tensor& x, std::vector<int> axes, bool keepdim, bool is_mean) {
  const char* name = is_mean ? "mean" : "sum";
  OpScope scope(std::string(name) + "(" + x.str() + ")");
  NvtxRange range(name);
  const std::vector<bool> mask = reduced_mask(x.ndim(), std::move(axes));
  Shape kept_shape, out_shape;
  int64_t count = 1;
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (mask[i]) {
      count *= x.shape()[i];
      if (keepdim) kept_shape.push_back(1);
    } else {
      kept_shape.push_back(x.shape()[i]);
    }
  }
  out_shape = kept_shape;
  const double scale = is_mean ? (count > 0 ? 1.0 / double(count) : 0.0) : 1.0;
  Tensor out = reduce_sum(x, mask, out_shape, scale);
  // The gradient broadcasts back: reshape to the keepdim shape, then expand.
  Shape keep_shape;
  for (size_t i = 0; i < x.shape().size(); ++i) keep_shape.push_back(mask[i] ? 1 : x.shape()[i]);
  const Shape input_shape = x.shape();
  record_op(name, out, {x}, [keep_shape, input_shape, scale](const Tensor& gy) {
    Tensor g = broadcast_to(gy.reshape(keep_shape), input_shape);
    return std::vector<Tensor>{scale == 1.0 ? g : mul_scalar(g, scale)};
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int> axes, bool keepdim) { return sum_or_mean(x, std::move(axes), keepdim, false); }
Tensor mean(const Tensor& x, std::vector<int> axes, bool keepdim) { return sum_or_mean(x, std::move(axes), keepdim, true); }

Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  OpScope scope("sum_to_shape(" + x.str() + " -> " + shape_str(shape) + ")");
  FFR_CHECK(shape.size() <= x.shape().size(), "sum_to_shape: ", shape_str(shape), " has more dims than ", x.str());
  const size_t lead = x.shape().size() - shape.size();
  std::vector<int> axes;
  for (size_t i = 0; i < x.shape().size(); ++i) {
    if (i < lead) {
      axes.push_back(int(i));
    } else if (shape[i - lead] == 1 && x.shape()[i] != 1) {
      axes.push_back(int(i));
    } else {
      FFR_CHECK(shape[i - lead] == x.shape()[i], "sum_to_shape: ", shape_str(shape), " does not broadcast to ",
                x.str());
    }
  }
  if (axes.empty()) return x.reshape(shape);
  return sum(x, axes, false).reshape(shape);
}

}  // namespace ffr
