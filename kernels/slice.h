// slice: x[..., start:end:step, ...] along one dimension, Python-style (negative start/end count
// from the end, out-of-range bounds clamp, step >= 1). Any dtype. The gradient scatters the
// upstream gradient into zeros of x's shape.
//
// A step-1 slice that is contiguous in x (every dimension before `dim` has size 1, e.g. a range
// of a batch) is a view sharing x's storage, as reshape is; every other slice is a copy.
//
// The strided row copy below also serves concat (kernels/concat.h) and slice's backward.
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step = 1);

// Two tensors viewed as [outer, rows, inner], "rows" running along the sliced or concatenated
// dimension:  dst[o, dst_start + r * dst_step, :] = src[o, src_start + r * src_step, :]  for r < count.
struct RowCopy {
  int64_t outer = 1;
  int64_t count = 0;
  int64_t inner = 1;
  int64_t src_rows = 0, src_start = 0, src_step = 1;
  int64_t dst_rows = 0, dst_start = 0, dst_step = 1;
};

// Raw byte copies (any dtype of `dtype`'s size); CUDA uses the widest word (up to 16 bytes) that
// the row length and the pointers' alignment allow.
void copy_rows_cpu(const void* src, void* dst, DType dtype, const RowCopy& copy);
void copy_rows_cuda(const void* src, void* dst, DType dtype, const RowCopy& copy);

// Runs the copy on src's device (src and dst on the same device, same dtype).
void copy_rows(const Tensor& src, Tensor& dst, const RowCopy& copy);

}  // namespace ffr
