// gather and index_select: picking elements or rows by an integer index (int32 or int64, on x's
// device). Forward copies any dtype; the gradient is a scatter-add into zeros of x's shape.
//
// Out-of-range indices: on CPU an ffr::Error naming the index and where it sits. On CUDA checking
// would cost a host synchronisation, so the kernels stay in bounds instead: an output element with
// an out-of-range index is 0 and sends no gradient anywhere.
//
// Backward on CUDA: where each x element receives few candidates (index.size(dim) <= 16 for gather,
// index length <= 16 for index_select), or when settings().deterministic is set, one thread per
// x element sums its contributions in index order: no atomics, bit-identical run to run, and the
// same order as the CPU reference. Otherwise float atomics scatter into a float32 buffer (gx
// itself for float32; a scratch converted afterwards for bfloat16, so repeated indices do not
// round at every addition); the sum order then varies from run to run in the last bits.
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

// torch.gather: index has x's ndim, index.size(d) <= x.size(d) for d != dim, and the output has
// index's shape: out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (likewise for other dims).
Tensor gather(const Tensor& x, int dim, const Tensor& index);
// Rows of x along dim picked by a 1-D index: out.shape = x.shape with shape[dim] = index.numel().
Tensor index_select(const Tensor& x, int dim, const Tensor& index);

constexpr int kMaxGatherDims = 8;
// Up to this many candidates per x element, CUDA backward scans instead of using atomics.
constexpr int64_t kGatherScanMaxCandidates = 16;

struct GatherIndexer {
  int ndim = 0;
  int dim = 0;
  int64_t x_sizes[kMaxGatherDims] = {};
  int64_t x_strides[kMaxGatherDims] = {};
  int64_t index_sizes[kMaxGatherDims] = {};  // = the output's shape
  int64_t index_strides[kMaxGatherDims] = {};
  int64_t x_numel = 0;
  int64_t index_numel = 0;

  // Offset in x of output position `linear` whose index value is j (0 <= j < x_sizes[dim]).
  // The loop bound is a constant so that nvcc unrolls it and keeps the arrays in registers.
  FFR_HOST_DEVICE int64_t x_offset(int64_t linear, int64_t j) const {
    int64_t off = j * x_strides[dim];
    for (int d = kMaxGatherDims - 1; d >= 0; --d) {
      if (d >= ndim) continue;
      const int64_t c = linear % index_sizes[d];
      linear /= index_sizes[d];
      if (d != dim) off += c * x_strides[d];
    }
    return off;
  }
};

GatherIndexer make_gather_indexer(const Shape& x_shape, const Shape& index_shape, int dim);

// x viewed as [outer, rows, inner], out as [outer, count, inner], count = the index's length.
struct IndexSelectShape {
  int64_t outer = 1;
  int64_t rows = 0;
  int64_t inner = 1;
  int64_t count = 0;
};

// out[p] = x[x_offset(p, index[p])]
void gather_cpu(const void* x, const void* index, void* out, DType dtype, DType index_dtype,
                const GatherIndexer& idx);
void gather_cuda(const void* x, const void* index, void* out, DType dtype, DType index_dtype,
                 const GatherIndexer& idx);
// gx = 0; gx[x_offset(p, index[p])] += gy[p]. Writes all of gx. Floating dtypes only.
void gather_backward_cpu(const void* gy, const void* index, void* gx, DType dtype, DType index_dtype,
                         const GatherIndexer& idx);
void gather_backward_cuda(const void* gy, const void* index, void* gx, DType dtype, DType index_dtype,
                          const GatherIndexer& idx);

// out[o, k, :] = x[o, index[k], :]
void index_select_cpu(const void* x, const void* index, void* out, DType dtype, DType index_dtype,
                      const IndexSelectShape& s);
void index_select_cuda(const void* x, const void* index, void* out, DType dtype, DType index_dtype,
                       const IndexSelectShape& s);
// gx = 0; gx[o, index[k], :] += gy[o, k, :]. Writes all of gx. Floating dtypes only.
void index_select_backward_cpu(const void* gy, const void* index, void* gx, DType dtype, DType index_dtype,
                               const IndexSelectShape& s);
void index_select_backward_cuda(const void* gy, const void* index, void* gx, DType dtype, DType index_dtype,
                                const IndexSelectShape& s);

}  // namespace ffr
