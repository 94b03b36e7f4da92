// NumPy broadcasting: shapes align from the right; a dimension of 1 stretches. The indexer maps
// an output position to each input's position (stride 0 along stretched dimensions); CPU loops
// and CUDA kernels share it.
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

constexpr int kMaxBroadcastDims = 8;

struct BroadcastIndexer {
  int ndim = 0;
  int64_t sizes[kMaxBroadcastDims] = {};
  int64_t a_strides[kMaxBroadcastDims] = {};
  int64_t b_strides[kMaxBroadcastDims] = {};

  FFR_HOST_DEVICE void offsets(int64_t linear, int64_t& ia, int64_t& ib) const {
    ia = 0;
    ib = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      ia += i * a_strides[d];
      ib += i * b_strides[d];
    }
  }
};

// The broadcast shape of a and b, or an error naming both.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Indexer over `out` for inputs of shapes a and b (each broadcastable to out).
BroadcastIndexer make_broadcast_indexer(const Shape& out, const Shape& a, const Shape& b);

}  // namespace ffr
