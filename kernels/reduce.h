// Sums and means over axes, and sum_to_shape (the gradient of broadcasting).
// Every reduction runs in a fixed order (CPU: sequential in double; CUDA: one block per output
// with a tree reduction), so results are bit-identical run to run.
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"

#include <vector>

namespace ffr {

// Reduces `axes` (negative counts from the end; empty = all axes).
Tensor sum(const Tensor& x, std::vector<int> axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, std::vector<int> axes = {}, bool keepdim = false);
// Sums x over the dimensions along which `shape` was broadcast to x's shape.
Tensor sum_to_shape(const Tensor& x, const Shape& shape);

constexpr int kMaxReduceDims = 8;

// Output position o (over the kept dims) and reduction position r (over the reduced dims) ->
// input offset base(o) + inner(r).
struct ReduceIndexer {
  int kept_ndim = 0;
  int64_t kept_sizes[kMaxReduceDims] = {};
  int64_t kept_strides[kMaxReduceDims] = {};
  int reduced_ndim = 0;
  int64_t reduced_sizes[kMaxReduceDims] = {};
  int64_t reduced_strides[kMaxReduceDims] = {};
  int64_t outputs = 1;
  int64_t reduced = 1;

  FFR_HOST_DEVICE static int64_t offset(int64_t linear, int ndim, const int64_t* sizes, const int64_t* strides) {
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      off += (linear % sizes[d]) * strides[d];
      linear /= sizes[d];
    }
    return off;
  }
  FFR_HOST_DEVICE int64_t base(int64_t o) const { return offset(o, kept_ndim, kept_sizes, kept_strides); }
  FFR_HOST_DEVICE int64_t inner(int64_t r) const { return offset(r, reduced_ndim, reduced_sizes, reduced_strides); }
};

// out[o] = scale * sum_r in[base(o) + inner(r)]
void reduce_sum_cpu(const void* in, void* out, DType dtype, const ReduceIndexer& idx, double scale);
void reduce_sum_cuda(const void* in, void* out, DType dtype, const ReduceIndexer& idx, double scale);

}  // namespace ffr
