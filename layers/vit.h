// Vision Transformer as timm's VisionTransformer (pre-norm blocks, class token, learned position
// embedding, GELU MLP, class-token pooling), with timm's parameter names: cls_token, pos_embed,
// patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*, norm.*, head.*.
#pragma once

#include "layers/attention.h"
#include "layers/classifier.h"
#include "layers/layer_norm.h"
#include "layers/module_list.h"

#include <memory>

namespace ffr {

struct ViTConfig {
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t dim = 768;
  int64_t depth = 12;
  int64_t heads = 12;
  int64_t mlp_dim = 3072;
  int64_t num_classes = 1000;
};

// Non-overlapping patches -> tokens. Holds a Conv2d-shaped weight [dim, 3, P, P] (timm's
// patch_embed.proj) but runs as one GEMM over unfolded patches: with stride == kernel the
// convolution is exactly a matrix product, and cuBLAS does it faster than a strided conv.
class PatchEmbedding : public Module {
 public:
  PatchEmbedding(int64_t patch_size, int64_t dim, Rng& rng);
  // [B, 3, H, W] -> [B, (H/P)*(W/P), dim]
  Tensor forward(const Tensor& images) const;

 private:
  struct Projection : Module {
    Projection(int64_t patch, int64_t dim, Rng& rng);
    Tensor weight, bias;
  };
  int64_t patch_, dim_;
  std::unique_ptr<Projection> proj_;
};

class Mlp : public Module {
 public:
  Mlp(int64_t dim, int64_t hidden, Rng& rng);
  Tensor forward(const Tensor& x) const;

 private:
  std::unique_ptr<Linear> fc1_, fc2_;
};

class ViTBlock : public Module {
 public:
  ViTBlock(const ViTConfig& config, Rng& rng);
  Tensor forward(const Tensor& x) const;

 private:
  std::unique_ptr<LayerNorm> norm1_, norm2_;
  std::unique_ptr<MultiHeadSelfAttention> attn_;
  std::unique_ptr<Mlp> mlp_;
};

class VisionTransformer : public Classifier {
 public:
  VisionTransformer(const ViTConfig& config, std::string name, Rng& rng);
  Tensor features(const Tensor& images) override;
  Linear& head() override { return *head_; }
  int64_t feature_dim() const override { return config_.dim; }
  int64_t num_classes() const override { return head_->out_features(); }
  void reset_head(int64_t classes, Rng& rng) override;
  std::string architecture() const override { return name_; }
  const ViTConfig& config() const { return config_; }

  Tensor cls_token, pos_embed;

 private:
  ViTConfig config_;
  std::string name_;
  std::unique_ptr<PatchEmbedding> patch_embed_;
  std::unique_ptr<ModuleList<ViTBlock>> blocks_;
  std::unique_ptr<LayerNorm> norm_;
  std::unique_ptr<Linear> head_;
};

}  // namespace ffr
