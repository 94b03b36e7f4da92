#include "layers/layer_norm.h"

#include "engine/nvtx.h"
#include "kernels/layer_norm.h"
#include "layers/layer_probe.h"

namespace ffr {

LayerNorm::LayerNorm(int64_t dim, double eps) : eps_(eps) {
  register_parameter("weight", weight, Tensor::ones({dim}));
  register_parameter("bias", bias, Tensor::zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor& x) const {
  NvtxRange range("LayerNorm");
  return probe_output(*this, x, layer_norm(x, weight, bias, eps_));
}

}  // namespace ffr
