#include "kernels/permute.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"

#include <cstring>
#include <string>

namespace ffr {

PermuteIndexer make_permute_indexer(const Shape& shape, const std::vector<int>& dims) {
  std::vector<int64_t> in_strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    in_strides[i] = stride;
    stride *= shape[i];
  }
  // Output dimensions in order, size-1 ones dropped; an output dimension merges into the one before
  // it when the two are also neighbours, in that order, in the input.
  std::vector<int64_t> sizes, strides;
  for (int d : dims) {
    const int64_t size = shape[size_t(d)], in_stride = in_strides[size_t(d)];
    if (size == 1) continue;
    if (!sizes.empty() && strides.back() == size * in_stride) {
      sizes.back() *= size;
      strides.back() = in_stride;
    } else {
      sizes.push_back(size);
      strides.push_back(in_stride);
    }
  }
  if (sizes.empty()) {  // a single element (or all dims of size 1)
    sizes.push_back(1);
    strides.push_back(1);
  }
  FFR_CHECK(sizes.size() <= size_t(kMaxPermuteDims), "permute supports up to ", kMaxPermuteDims,
            " dimensions that do not merge, got ", shape_str(shape));
  PermuteIndexer idx;
  idx.ndim = int(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    idx.out_sizes[i] = sizes[i];
    idx.in_strides[i] = strides[i];
  }
  idx.numel = shape_numel(shape);
  return idx;
}

void permute_cpu(const void* in, void* out, DType dtype, const PermuteIndexer& idx) {
  if (idx.numel == 0) return;
  if (idx.ndim == 1 && idx.in_strides[0] == 1) {  // the permutation only moved size-1 dims
    std::memcpy(out, in, size_t(idx.numel) * dtype_size(dtype));
    return;
  }
  dispatch_element_size(dtype, "permute", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pin = static_cast<const T*>(in);
    T* pout = static_cast<T*>(out);
    // Walk the output in order: a tight loop over the innermost dimension, and an odometer over
    // the others that keeps the input offset up to date without divisions. Threads take runs of
    // rows; each sets its odometer once, from its first row.
    const int last = idx.ndim - 1;
    const int64_t inner = idx.out_sizes[last], inner_stride = idx.in_strides[last];
    parallel_for(0, idx.numel / inner, rows_grain(inner), [&](int64_t row_begin, int64_t row_end) {
      int64_t counter[kMaxPermuteDims] = {};
      int64_t offset = 0;
      for (int64_t d = last - 1, rest = row_begin; d >= 0; --d) {
        counter[d] = rest % idx.out_sizes[d];
        rest /= idx.out_sizes[d];
        offset += counter[d] * idx.in_strides[d];
      }
      for (int64_t row = row_begin; row < row_end; ++row) {
        const T* src = pin + offset;
        T* dst = pout + row * inner;
        for (int64_t k = 0; k < inner; ++k) dst[k] = src[k * inner_stride];
        for (int d = last - 1; d >= 0; --d) {
          if (++counter[d] < idx.out_sizes[d]) {
            offset += idx.in_strides[d];
            break;
          }
          counter[d] = 0;
          offset -= idx.in_strides[d] * (idx.out_sizes[d] - 1);
        }
      }
    });
  });
}

namespace {

std::string dims_str(const std::vector<int>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// dims with negatives resolved, checked to be a permutation of 0..ndim-1.
std::vector<int> normalized_permutation(const std::vector<int>& dims, int ndim) {
  FFR_CHECK(int(dims.size()) == ndim, "permute of a ", ndim, "-d tensor needs ", ndim, " dims, got ",
            dims_str(dims));
  std::vector<int> out(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int d = dims[i] < 0 ? dims[i] + ndim : dims[i];
    FFR_CHECK(d >= 0 && d < ndim, "permute: dim ", dims[i], " out of range for ", ndim, " dimensions");
    FFR_CHECK(!seen[size_t(d)], "permute: dim ", dims[i], " repeated in ", dims_str(dims));
    seen[size_t(d)] = true;
    out[i] = d;
  }
  return out;
}

void launch_permute(const Tensor& x, Tensor& out, const PermuteIndexer& idx) {
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    permute_cuda(x.raw_data(), out.raw_data(), x.dtype(), idx);
    return;
  }
#endif
  permute_cpu(x.raw_data(), out.raw_data(), x.dtype(), idx);
}

Tensor run_permute(const Tensor& x, const std::vector<int>& dims, const char* name) {
  NvtxRange range(name);
  Shape out_shape(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) out_shape[i] = x.shape()[size_t(dims[i])];
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  launch_permute(x, out, make_permute_indexer(x.shape(), dims));
  if (!needs_grad({&x})) return out;
  std::vector<int> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[size_t(dims[i])] = int(i);
  record_op(name, out, {x}, [inverse, name](const Tensor& gy) {
    return std::vector<Tensor>{run_permute(gy, inverse, name)};
  });
  return out;
}

}  // namespace

Tensor permute(const Tensor& x, const std::vector<int>& dims) {
  OpScope scope("permute(" + x.str() + ", dims=" + dims_str(dims) + ")");
  return run_permute(x, normalized_permutation(dims, x.ndim()), "permute");
}

Tensor transpose(const Tensor& x, int dim0, int dim1) {
  OpScope scope("transpose(" + x.str() + ", " + std::to_string(dim0) + ", " + std::to_string(dim1) + ")");
  const int n = x.ndim();
  const int d0 = dim0 < 0 ? dim0 + n : dim0, d1 = dim1 < 0 ? dim1 + n : dim1;
  FFR_CHECK(d0 >= 0 && d0 < n && d1 >= 0 && d1 < n, "transpose: dims ", dim0, ", ", dim1, " out of range for ",
            n, " dimensions");
  std::vector<int> dims(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) dims[size_t(i)] = i;
  std::swap(dims[size_t(d0)], dims[size_t(d1)]);
  return run_permute(x, dims, "transpose");
}

}  // namespace ffr
