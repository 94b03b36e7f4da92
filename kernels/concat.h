// concat: joins tensors along one dimension (all other dimensions equal). Any dtype. The gradient
// of each input is its slice of the upstream gradient.
#pragma once

#include "engine/tensor.h"

#include <vector>

namespace ffr {

// dim may be negative (counts from the end). Inputs share dtype, device and ndim (>= 1); an input
// may have size 0 along `dim`.
Tensor concat(const std::vector<Tensor>& xs, int dim);

}  // namespace ffr
