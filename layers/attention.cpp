#include "layers/attention.h"

#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/attention.h"
#include "kernels/permute.h"
#include "layers/layer_probe.h"

namespace ffr {

MultiHeadSelfAttention::MultiHeadSelfAttention(int64_t dim, int64_t heads, Rng& rng) : dim_(dim), heads_(heads) {
  FFR_CHECK(heads > 0 && dim % heads == 0, "attention: dim ", dim, " is not divisible by ", heads, " heads");
  register_module("qkv", qkv_, std::make_unique<Linear>(dim, 3 * dim, true, rng));
  register_module("proj", proj_, std::make_unique<Linear>(dim, dim, true, rng));
}

Tensor MultiHeadSelfAttention::forward(const Tensor& x) const {
  NvtxRange range("MultiHeadSelfAttention");
  const int64_t batch = x.size(0), tokens = x.size(1), head_dim = dim_ / heads_;
  // [B, T, 3*dim] -> [3, B, heads, T, head_dim]: q, k, v split along the first axis (timm's layout).
  Tensor qkv = permute(qkv_->forward(x).reshape({batch, tokens, 3, heads_, head_dim}), {2, 0, 3, 1, 4});
  // The attention core is probed as this module (between its qkv and proj layers). Packed: its
  // backward writes dq, dk, dv into one gradient for `qkv` (no per-slice zeros, no sum of three).
  Tensor attended = probe_output(*this, qkv, scaled_dot_product_attention_packed(qkv));  // [B, heads, T, head_dim]
  return proj_->forward(permute(attended, {0, 2, 1, 3}).reshape({batch, tokens, dim_}));
}

}  // namespace ffr
