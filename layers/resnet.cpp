#include "layers/resnet.h"

#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "kernels/pooling.h"

namespace ffr {

Bottleneck::Downsample::Downsample(int64_t in_channels, int64_t out_channels, int64_t stride, Rng& rng) {
  register_module("0", conv, std::make_unique<Conv2d>(in_channels, out_channels, 1, stride, 0, false, rng));
  register_module("1", bn, std::make_unique<BatchNorm2d>(out_channels));
}

Bottleneck::Bottleneck(int64_t in_channels, int64_t planes, int64_t stride, Rng& rng) {
  const int64_t out_channels = planes * kExpansion;
  register_module("conv1", conv1_, std::make_unique<Conv2d>(in_channels, planes, 1, 1, 0, false, rng));
  register_module("bn1", bn1_, std::make_unique<BatchNorm2d>(planes));
  register_module("conv2", conv2_, std::make_unique<Conv2d>(planes, planes, 3, stride, 1, false, rng));
  register_module("bn2", bn2_, std::make_unique<BatchNorm2d>(planes));
  register_module("conv3", conv3_, std::make_unique<Conv2d>(planes, out_channels, 1, 1, 0, false, rng));
  register_module("bn3", bn3_, std::make_unique<BatchNorm2d>(out_channels));
  if (stride != 1 || in_channels != out_channels)
    register_module("downsample", downsample_, std::make_unique<Downsample>(in_channels, out_channels, stride, rng));
}

Tensor Bottleneck::forward(const Tensor& x) {
  NvtxRange range("Bottleneck");
  // forward_add_relu: batch norm, the skip add and ReLU, fused into one pass in inference.
  Tensor h = bn1_->forward_add_relu(conv1_->forward(x), Tensor(), true);
  h = bn2_->forward_add_relu(conv2_->forward(h), Tensor(), true);
  Tensor identity = downsample_ ? downsample_->bn->forward(downsample_->conv->forward(x)) : x;
  return bn3_->forward_add_relu(conv3_->forward(h), identity, true);
}

Bottleneck::Layers Bottleneck::layers() const {
  return {conv1_.get(), conv2_.get(), conv3_.get(), downsample_ ? downsample_->conv.get() : nullptr,
          bn1_.get(),   bn2_.get(),   bn3_.get(),   downsample_ ? downsample_->bn.get() : nullptr};
}

ResNet::ResNet(const ResNetConfig& config, std::string name, Rng& rng) : config_(config), name_(std::move(name)) {
  FFR_CHECK(!config.blocks.empty() && config.width > 0, "ResNet: empty configuration");
  if (config.small_input_stem) {
    register_module("conv1", conv1_, std::make_unique<Conv2d>(3, config.width, 3, 1, 1, false, rng));
  } else {
    register_module("conv1", conv1_, std::make_unique<Conv2d>(3, config.width, 7, 2, 3, false, rng));
  }
  register_module("bn1", bn1_, std::make_unique<BatchNorm2d>(config.width));
  int64_t in_channels = config.width;
  for (size_t s = 0; s < config.blocks.size(); ++s) {
    auto stage = std::make_unique<ModuleList<Bottleneck>>();
    const int64_t planes = config.width << s;
    for (int b = 0; b < config.blocks[s]; ++b) {
      const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      stage->append(std::make_unique<Bottleneck>(in_channels, planes, stride, rng));
      in_channels = planes * Bottleneck::kExpansion;
    }
    register_child("layer" + std::to_string(s + 1), stage.get());
    stages_.push_back(std::move(stage));
  }
  register_module("fc", fc_, std::make_unique<Linear>(in_channels, config.num_classes, true, rng));
}

std::vector<const Bottleneck*> ResNet::blocks() const {
  std::vector<const Bottleneck*> out;
  for (const auto& stage : stages_)
    for (const auto& block : *stage) out.push_back(block.get());
  return out;
}

Tensor ResNet::features(const Tensor& images) {
  NvtxRange range("ResNet.features");
  FFR_CHECK(images.ndim() == 4 && images.size(1) == 3, "ResNet expects [N, 3, H, W] images, got ", images.str());
  Tensor x = bn1_->forward_add_relu(conv1_->forward(images), Tensor(), true);
  if (!config_.small_input_stem) x = max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
  for (auto& stage : stages_)
    for (const auto& block : *stage) x = block->forward(x);
  return global_avg_pool2d(x);
}

}  // namespace ffr
