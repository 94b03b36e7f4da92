#include "layers/model_zoo.h"

#include "engine/error.h"
#include "layers/resnet.h"
#include "layers/vit.h"

#include <functional>
#include <sstream>

namespace ffr {

namespace {

struct Entry {
  ModelInfo info;
  std::function<std::unique_ptr<Classifier>(int64_t classes, int64_t image_size, Rng& rng)> make;
};

std::unique_ptr<Classifier> resnet(const std::string& name, ResNetConfig config, int64_t classes, Rng& rng) {
  config.num_classes = classes;
  return std::make_unique<ResNet>(config, name, rng);
}

std::unique_ptr<Classifier> vit(const std::string& name, ViTConfig config, int64_t classes, int64_t image_size,
                                Rng& rng) {
  config.num_classes = classes;
  config.image_size = image_size;
  return std::make_unique<VisionTransformer>(config, name, rng);
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> all = {
      {{"resnet50", "torchvision resnet50 (v1.5), the paper's backbone", 224},
       [](int64_t c, int64_t, Rng& r) { return resnet("resnet50", {{3, 4, 6, 3}, 64, false, 0}, c, r); }},
      {{"resnet26_small", "bottleneck ResNet [2,2,2,2], width 16, 3x3 stem: for 32 px images on CPU", 32},
       [](int64_t c, int64_t, Rng& r) { return resnet("resnet26_small", {{2, 2, 2, 2}, 16, true, 0}, c, r); }},
      {{"resnet_demo", "bottleneck ResNet [1,1,1,1], width 16, torchvision stem: the CPU demo's model (32 px)", 32},
       [](int64_t c, int64_t, Rng& r) { return resnet("resnet_demo", {{1, 1, 1, 1}, 16, false, 0}, c, r); }},
      {{"resnet_tiny", "bottleneck ResNet [1,1], width 4, 3x3 stem: for tests", 16},
       [](int64_t c, int64_t, Rng& r) { return resnet("resnet_tiny", {{1, 1}, 4, true, 0}, c, r); }},
      {{"vit_b32", "timm vit_base_patch32_224: patch 32, dim 768, depth 12, 12 heads, MLP 3072", 224},
       [](int64_t c, int64_t s, Rng& r) { return vit("vit_b32", {224, 32, 768, 12, 12, 3072, 0}, c, s, r); }},
      {{"vit_small_p4", "ViT patch 4, dim 192, depth 6, 3 heads, MLP 768: for 32 px images", 32},
       [](int64_t c, int64_t s, Rng& r) { return vit("vit_small_p4", {32, 4, 192, 6, 3, 768, 0}, c, s, r); }},
      {{"vit_tiny", "ViT patch 4, dim 16, depth 2, 2 heads, MLP 32: for tests", 8},
       [](int64_t c, int64_t s, Rng& r) { return vit("vit_tiny", {8, 4, 16, 2, 2, 32, 0}, c, s, r); }},
  };
  return all;
}

}  // namespace

std::vector<ModelInfo> available_models() {
  std::vector<ModelInfo> out;
  for (const Entry& e : entries()) out.push_back(e.info);
  return out;
}

std::unique_ptr<Classifier> make_model(const std::string& name, int64_t num_classes, Rng& rng, int64_t image_size) {
  for (const Entry& e : entries()) {
    if (e.info.name != name) continue;
    FFR_CHECK(num_classes > 0, "a model needs at least one class, got ", num_classes);
    return e.make(num_classes, image_size > 0 ? image_size : e.info.default_image_size, rng);
  }
  std::ostringstream known;
  for (const Entry& e : entries()) known << " " << e.info.name;
  throw InputError("unknown model '" + name + "'; known models:" + known.str());
}

}  // namespace ffr
