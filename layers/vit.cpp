#include "layers/vit.h"

#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/activation.h"
#include "kernels/concat.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/permute.h"
#include "kernels/slice.h"
#include "layers/init.h"
#include "layers/layer_probe.h"

namespace ffr {

// ---- patch embedding ----

PatchEmbedding::Projection::Projection(int64_t patch, int64_t dim, Rng& rng) {
  const int64_t fan_in = 3 * patch * patch;
  register_parameter("weight", weight, init::default_uniform({dim, 3, patch, patch}, fan_in, rng));
  register_parameter("bias", bias, init::default_uniform({dim}, fan_in, rng));
}

PatchEmbedding::PatchEmbedding(int64_t patch_size, int64_t dim, Rng& rng) : patch_(patch_size), dim_(dim) {
  register_module("proj", proj_, std::make_unique<Projection>(patch_size, dim, rng));
}

Tensor PatchEmbedding::forward(const Tensor& images) const {
  NvtxRange range("PatchEmbedding");
  FFR_CHECK(images.ndim() == 4 && images.size(1) == 3, "patch embedding expects [B, 3, H, W] images, got ",
            images.str());
  const int64_t batch = images.size(0), rows = images.size(2) / patch_, cols = images.size(3) / patch_;
  FFR_CHECK(rows * patch_ == images.size(2) && cols * patch_ == images.size(3), "image size ",
            shape_str(images.shape()), " is not a multiple of the patch size ", patch_);
  // [B, C, rows, P, cols, P] -> [B, rows, cols, C, P, P]: each patch flattened in the weight's
  // (c, y, x) order, so the product below is the convolution.
  Tensor patches = permute(images.reshape({batch, 3, rows, patch_, cols, patch_}), {0, 2, 4, 1, 3, 5})
                       .reshape({batch, rows * cols, 3 * patch_ * patch_});
  Tensor tokens = matmul(patches, proj_->weight.reshape({dim_, 3 * patch_ * patch_}), false, true);
  return probe_output(*this, images, add(tokens, proj_->bias));
}

// ---- blocks ----

Mlp::Mlp(int64_t dim, int64_t hidden, Rng& rng) {
  register_module("fc1", fc1_, std::make_unique<Linear>(dim, hidden, true, rng));
  register_module("fc2", fc2_, std::make_unique<Linear>(hidden, dim, true, rng));
}

Tensor Mlp::forward(const Tensor& x) const { return fc2_->forward(fc1_->forward_gelu(x)); }

ViTBlock::ViTBlock(const ViTConfig& config, Rng& rng) {
  register_module("norm1", norm1_, std::make_unique<LayerNorm>(config.dim));
  register_module("attn", attn_, std::make_unique<MultiHeadSelfAttention>(config.dim, config.heads, rng));
  register_module("norm2", norm2_, std::make_unique<LayerNorm>(config.dim));
  register_module("mlp", mlp_, std::make_unique<Mlp>(config.dim, config.mlp_dim, rng));
}

Tensor ViTBlock::forward(const Tensor& x) const {
  NvtxRange range("ViTBlock");
  Tensor h = add(x, attn_->forward(norm1_->forward(x)));
  return add(h, mlp_->forward(norm2_->forward(h)));
}

// ---- the model ----

namespace {
// timm's init: truncated normal (std 0.02) for Linear weights, zero biases.
void timm_init_linear(Linear& linear, Rng& rng) {
  linear.weight.copy_(init::trunc_normal(linear.weight.shape(), 0.02, rng));
  linear.bias.zero_();
}
}  // namespace

VisionTransformer::VisionTransformer(const ViTConfig& config, std::string name, Rng& rng)
    : config_(config), name_(std::move(name)) {
  FFR_CHECK(config.image_size % config.patch_size == 0, "ViT: image size ", config.image_size,
            " is not a multiple of the patch size ", config.patch_size);
  const int64_t side = config.image_size / config.patch_size;
  register_parameter("cls_token", cls_token, init::trunc_normal({1, 1, config.dim}, 1e-6, rng));
  register_parameter("pos_embed", pos_embed, init::trunc_normal({1, side * side + 1, config.dim}, 0.02, rng));
  register_module("patch_embed", patch_embed_, std::make_unique<PatchEmbedding>(config.patch_size, config.dim, rng));
  register_module("blocks", blocks_, std::make_unique<ModuleList<ViTBlock>>());
  for (int64_t i = 0; i < config.depth; ++i) {
    ViTBlock& block = blocks_->append(std::make_unique<ViTBlock>(config, rng));
    for (auto& [pname, p] : block.named_parameters()) {
      if (p.ndim() == 2) {  // Linear weights (LayerNorm parameters are 1-D)
        p.copy_(init::trunc_normal(p.shape(), 0.02, rng));
      } else if (pname.find("norm") == std::string::npos) {
        p.zero_();  // Linear biases
      }
    }
  }
  register_module("norm", norm_, std::make_unique<LayerNorm>(config.dim));
  register_module("head", head_, std::make_unique<Linear>(config.dim, config.num_classes, true, rng));
  timm_init_linear(*head_, rng);
}

Tensor VisionTransformer::features(const Tensor& images) {
  NvtxRange range("ViT.features");
  Tensor tokens = patch_embed_->forward(images);  // [B, N, dim]
  const int64_t batch = tokens.size(0);
  Tensor cls = broadcast_to(cls_token, {batch, 1, config_.dim});
  Tensor x = add(concat({cls, tokens}, 1), pos_embed);
  for (const auto& block : *blocks_) x = block->forward(x);
  x = norm_->forward(x);
  return slice(x, 1, 0, 1).reshape({batch, config_.dim});  // the class token
}

void VisionTransformer::reset_head(int64_t classes, Rng& rng) {
  head_->reset(classes, rng);
  timm_init_linear(*head_, rng);
}

}  // namespace ffr
