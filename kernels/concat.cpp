#include "kernels/concat.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/slice.h"

#include <string>

namespace ffr {

// One strided row copy per input (kernels/slice): with out viewed as [outer, total, inner], input
// i fills rows [offset_i, offset_i + size_i) of every outer block.
Tensor concat(const std::vector<Tensor>& xs, int dim) {
  std::string description = "concat(";
  for (size_t i = 0; i < xs.size(); ++i) description += (i ? ", " : "") + xs[i].str();
  OpScope scope(description + "; dim=" + std::to_string(dim) + ")");
  NvtxRange range("concat");
  FFR_CHECK(!xs.empty(), "concat of no tensors");
  const Tensor& first = xs[0];
  const int n = first.ndim();
  const int d = dim < 0 ? dim + n : dim;
  FFR_CHECK(d >= 0 && d < n, "concat: dim ", dim, " out of range for ", first.str());
  Shape out_shape = first.shape();
  out_shape[size_t(d)] = 0;
  for (const Tensor& x : xs) {
    FFR_CHECK(x.dtype() == first.dtype(), "concat: dtype mismatch: ", x.str(), " and ", first.str());
    FFR_CHECK(x.device() == first.device(), "concat: device mismatch: ", x.str(), " and ", first.str());
    FFR_CHECK(x.ndim() == n, "concat: ", x.str(), " and ", first.str(), " differ in ndim");
    for (int i = 0; i < n; ++i)
      FFR_CHECK(i == d || x.shape()[size_t(i)] == first.shape()[size_t(i)], "concat along dim ", d, ": ", x.str(),
                " and ", first.str(), " differ in dim ", i);
    out_shape[size_t(d)] += x.shape()[size_t(d)];
  }

  RowCopy copy;
  for (int i = 0; i < d; ++i) copy.outer *= out_shape[size_t(i)];
  for (int i = d + 1; i < n; ++i) copy.inner *= out_shape[size_t(i)];
  copy.dst_rows = out_shape[size_t(d)];
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    copy.count = copy.src_rows = x.shape()[size_t(d)];
    copy.dst_start = offset;
    copy_rows(x, out, copy);
    offsets.push_back(offset);
    offset += x.shape()[size_t(d)];
  }
  if (!needs_grad(xs)) return out;
  // Only inputs that take a gradient get a slice of it.
  std::vector<bool> wanted;
  for (const Tensor& x : xs) wanted.push_back(x.requires_grad() || x.grad_fn() != nullptr);
  record_op("concat", out, xs, [d, offsets, offset, wanted](const Tensor& gy) {
    std::vector<Tensor> grads(wanted.size());
    for (size_t i = 0; i < wanted.size(); ++i) {
      const int64_t end = i + 1 < offsets.size() ? offsets[i + 1] : offset;
      if (wanted[i]) grads[i] = slice(gy, d, offsets[i], end);
    }
    return grads;
  });
  return out;
}

}  // namespace ffr
