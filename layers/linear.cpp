#include "layers/linear.h"

#include "engine/nvtx.h"
#include "kernels/activation.h"
#include "kernels/linear_activation.h"
#include "layers/init.h"
#include "layers/layer_probe.h"

namespace ffr {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Rng& rng)
    : in_(in_features), out_(out_features) {
  register_parameter("weight", weight, init::default_uniform({out_, in_}, in_, rng));
  register_parameter("bias", bias, with_bias ? init::default_uniform({out_}, in_, rng) : Tensor());
}

void Linear::reset(int64_t out_features, Rng& rng) {
  const Device device = weight.device();
  out_ = out_features;
  weight = init::default_uniform({out_, in_}, in_, rng).to(device).set_requires_grad(true);
  if (bias.defined()) bias = init::default_uniform({out_}, in_, rng).to(device).set_requires_grad(true);
}

Tensor Linear::forward(const Tensor& x) const {
  NvtxRange range("Linear");
  // Training: matmul, then add_bias (a row-wise kernel, and a coalesced column sum for the bias
  // gradient). Inference on the CPU: the bias added inside the product (linear_activation.h).
  return probe_output(*this, x, linear_bias_gelu(x, weight, bias, false));
}

Tensor Linear::forward_gelu(const Tensor& x) const {
  // A probe must see the layer's own output, before GELU: then the two run apart.
  if (layer_probe_installed()) return gelu(forward(x));
  NvtxRange range("Linear");
  return linear_bias_gelu(x, weight, bias, true);
}

}  // namespace ffr
