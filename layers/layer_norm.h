// LayerNorm over the last dimension, with affine weight and bias (PyTorch's parameter names).
#pragma once

#include "layers/module.h"

namespace ffr {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-6);  // timm's ViT uses eps 1e-6
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;

 private:
  double eps_;
};

}  // namespace ffr
