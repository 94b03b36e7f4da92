// Inverted dropout (Srivastava et al. 2014): at train time each element is zeroed with
// probability p and the survivors are scaled by 1/(1-p), so evaluation is the identity.
//
// The mask is a pure function of a Philox position: element i is kept iff
//   word_to_unit_float(philox_word(seed, stream, offset + i)) >= p,
// with offset = rng.reserve(numel). CPU and CUDA therefore drop exactly the same elements for
// the same Rng state. The backward recomputes the mask from the saved position instead of
// storing it: no activation memory, and one Philox block per 4 elements is cheaper than the
// mask's extra read and write.
#pragma once

#include "engine/host_device.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "kernels/fill.h"

#include <cstdint>

namespace ffr {

// p in [0, 1). Identity (returns x itself, rng untouched) when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training, Rng& rng);

// The keep decision for one element's Philox word, shared by the CPU and CUDA code.
FFR_HOST_DEVICE bool dropout_keeps(uint32_t philox_word_of_element, float p) {
  return word_to_unit_float(philox_word_of_element) >= p;
}

// out[i] = keeps(i) ? in[i] / (1 - p) : 0 for the mask drawn at `at`. The forward applies it to
// x, the backward to dy at the same position. in == out is allowed.
void dropout_apply_cpu(const void* in, void* out, int64_t n, DType dtype, PhiloxPosition at, double p);
void dropout_apply_cuda(const void* in, void* out, int64_t n, DType dtype, PhiloxPosition at, double p);

}  // namespace ffr
