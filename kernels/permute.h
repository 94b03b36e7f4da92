// permute / transpose: materialising copies (tensors are always contiguous). Any dtype (the copy
// never looks at the values). The gradient is the inverse permutation of the upstream gradient.
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"

#include <cstdint>
#include <vector>

namespace ffr {

// out.shape[i] = x.shape[dims[i]]; dims is a permutation of 0..ndim-1 (negative counts from the end).
Tensor permute(const Tensor& x, const std::vector<int>& dims);
// Swaps two dimensions (negative counts from the end).
Tensor transpose(const Tensor& x, int dim0, int dim1);

constexpr int kMaxPermuteDims = 8;

// Output position -> input offset. Built with adjacent dimensions that stay adjacent merged and
// size-1 dimensions dropped, so e.g. NCHW -> NHWC becomes [N, C, HW] -> [N, HW, C]: fewer
// divisions per element, and the CUDA launcher can recognise a batched 2-D transpose.
struct PermuteIndexer {
  int ndim = 0;
  int64_t out_sizes[kMaxPermuteDims] = {};
  int64_t in_strides[kMaxPermuteDims] = {};  // input stride of output dimension d
  int64_t numel = 0;

  FFR_HOST_DEVICE int64_t input_offset(int64_t linear) const {
    int64_t off = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      off += (linear % out_sizes[d]) * in_strides[d];
      linear /= out_sizes[d];
    }
    return off;
  }

  // The merged permutation is [B,] R, C -> [B,] C, R (in_strides = [R*C,] 1, C): a batch of 2-D
  // transposes, which CUDA copies through shared-memory tiles.
  bool is_batched_transpose() const {
    if (ndim < 2 || ndim > 3) return false;
    const int64_t rows = out_sizes[ndim - 1], cols = out_sizes[ndim - 2];
    const bool last_two = in_strides[ndim - 2] == 1 && in_strides[ndim - 1] == cols;
    return last_two && (ndim == 2 || in_strides[0] == rows * cols);
  }
};

PermuteIndexer make_permute_indexer(const Shape& shape, const std::vector<int>& dims);

// out[i] = in[idx.input_offset(i)] for every output position i.
void permute_cpu(const void* in, void* out, DType dtype, const PermuteIndexer& idx);
void permute_cuda(const void* in, void* out, DType dtype, const PermuteIndexer& idx);

}  // namespace ffr
