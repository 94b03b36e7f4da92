// Parameter initialisation as torchvision and timm do it, from a seeded Rng (CPU tensors; the
// model is moved to its device afterwards).
#pragma once

#include "engine/rng.h"
#include "engine/tensor.h"

namespace ffr::init {

// torch.nn.Linear/Conv2d default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor default_uniform(const Shape& shape, int64_t fan_in, Rng& rng);
// torchvision ResNet convolutions: kaiming_normal(mode=fan_out, relu): N(0, sqrt(2 / fan_out)).
Tensor kaiming_normal_fan_out(const Shape& shape, int64_t fan_out, Rng& rng);
// timm ViT: truncated normal (std, cut at +-2 std, by resampling).
Tensor trunc_normal(const Shape& shape, double stddev, Rng& rng);

}  // namespace ffr::init
