// Linear: y = x W^T + b over the last dimension (W is [out, in], PyTorch's layout).
#pragma once

#include "engine/rng.h"
#include "layers/module.h"

namespace ffr {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Rng& rng);
  Tensor forward(const Tensor& x) const;
  // gelu(forward(x)), an MLP's first layer: one fused product in inference
  // (kernels/linear_activation.h).
  Tensor forward_gelu(const Tensor& x) const;
  // New weight and bias for `out_features` outputs (default init), on the current device.
  void reset(int64_t out_features, Rng& rng);

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Tensor weight, bias;

 private:
  int64_t in_, out_;
};

}  // namespace ffr
