// ResNet with bottleneck blocks, as torchvision's resnet50 (v1.5: the stride sits on the 3x3
// conv), any depth and width, with torchvision's parameter names: conv1, bn1,
// layer{1..4}.N.{conv1,bn1,conv2,bn2,conv3,bn3,downsample.0,downsample.1}, fc.
#pragma once

#include "layers/classifier.h"
#include "layers/conv_bn.h"
#include "layers/module_list.h"

#include <memory>
#include <vector>

namespace ffr {

struct ResNetConfig {
  std::vector<int> blocks{3, 4, 6, 3};  // bottlenecks per stage
  int64_t width = 64;                   // stem channels; stage s has width * 2^s planes
  // For small images (32 px): a 3x3 stride-1 stem and no max-pool, as CIFAR ResNets do, so the
  // stages still see 32/16/8/4 px maps instead of 8/4/2/1.
  bool small_input_stem = false;
  int64_t num_classes = 1000;
};

class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in_channels, int64_t planes, int64_t stride, Rng& rng);
  Tensor forward(const Tensor& x);

  // The block's layers, for code that runs it another way (layers/resnet_inference_plan.h);
  // the downsample pair is null where the block has none.
  struct Layers {
    const Conv2d *conv1, *conv2, *conv3, *downsample_conv;
    const BatchNorm2d *bn1, *bn2, *bn3, *downsample_bn;
  };
  Layers layers() const;

 private:
  struct Downsample : Module {
    Downsample(int64_t in_channels, int64_t out_channels, int64_t stride, Rng& rng);
    std::unique_ptr<Conv2d> conv;
    std::unique_ptr<BatchNorm2d> bn;
  };
  std::unique_ptr<Conv2d> conv1_, conv2_, conv3_;
  std::unique_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::unique_ptr<Downsample> downsample_;
};

class ResNet : public Classifier {
 public:
  ResNet(const ResNetConfig& config, std::string name, Rng& rng);
  Tensor features(const Tensor& images) override;
  Linear& head() override { return *fc_; }
  int64_t feature_dim() const override { return fc_->in_features(); }
  int64_t num_classes() const override { return fc_->out_features(); }
  void reset_head(int64_t classes, Rng& rng) override { fc_->reset(classes, rng); }
  std::string architecture() const override { return name_; }

  // The stem and the blocks in order, for code that runs the network another way
  // (layers/resnet_inference_plan.h).
  const ResNetConfig& config() const { return config_; }
  const Conv2d& stem_conv() const { return *conv1_; }
  const BatchNorm2d& stem_bn() const { return *bn1_; }
  std::vector<const Bottleneck*> blocks() const;

 private:
  ResNetConfig config_;
  std::string name_;
  std::unique_ptr<Conv2d> conv1_;
  std::unique_ptr<BatchNorm2d> bn1_;
  std::vector<std::unique_ptr<ModuleList<Bottleneck>>> stages_;
  std::unique_ptr<Linear> fc_;
};

}  // namespace ffr
