// A bias over the last axis (Linear's): y = x + bias, x: [..., N], bias: [N]; and its gradient,
// the column sum of dy over every row.
//
// Dedicated kernels rather than the generic broadcast add and strided reduce, which pay an
// int64 division per element and, for the reduction, read a column at a time (uncoalesced).
// CUDA: bias_add walks each row with the columns across threads (bias loaded once per thread);
// column_sum has each block sum a fixed slab of rows for 32 columns (a warp reads 32 neighbouring
// columns: coalesced), writes one partial per slab, and a second kernel adds the partials in slab
// order. The slabs depend only on the shape, so the result is the same bit for bit run to run.
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

// x + bias over the last axis (x: [..., N], bias: [N], same dtype and device), with autograd.
Tensor add_bias(const Tensor& x, const Tensor& bias);
// The sum over every row of a [rows, N] view of x (x: [..., N]) -> [N]: the bias gradient.
Tensor column_sum(const Tensor& x);

// Launchers (rows x columns, row-major). CPU: accumulates in double.
void bias_add_cpu(const void* x, const void* bias, void* y, int64_t rows, int64_t columns, DType dtype);
void bias_add_cuda(const void* x, const void* bias, void* y, int64_t rows, int64_t columns, DType dtype);
void column_sum_cpu(const void* x, void* out, int64_t rows, int64_t columns, DType dtype);
// `partials`: float32 scratch of column_sum_cuda_partials(rows) * columns elements.
int64_t column_sum_cuda_slabs(int64_t rows);
void column_sum_cuda(const void* x, void* out, float* partials, int64_t rows, int64_t columns, DType dtype);

}  // namespace ffr
