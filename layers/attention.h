// Multi-head self-attention as timm's Attention: one qkv projection [3*dim, dim], fused scaled
// dot-product attention per head, then an output projection. Parameter names: qkv.*, proj.*.
#pragma once

#include "layers/linear.h"

#include <memory>

namespace ffr {

class MultiHeadSelfAttention : public Module {
 public:
  MultiHeadSelfAttention(int64_t dim, int64_t heads, Rng& rng);
  // [B, T, dim] -> [B, T, dim]
  Tensor forward(const Tensor& x) const;

 private:
  int64_t dim_, heads_;
  std::unique_ptr<Linear> qkv_, proj_;
};

}  // namespace ffr
