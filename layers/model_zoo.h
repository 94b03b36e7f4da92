// Named model configurations: the paper's backbones (resnet50, vit_b32) and small ones for
// tests and CPU runs. Adding a model is one entry in model_zoo.cpp.
#pragma once

#include "layers/classifier.h"

#include <memory>
#include <string>
#include <vector>

namespace ffr {

struct ModelInfo {
  std::string name;
  std::string description;
  int64_t default_image_size;
};

std::vector<ModelInfo> available_models();
// Throws InputError naming the unknown model and listing the known ones.
std::unique_ptr<Classifier> make_model(const std::string& name, int64_t num_classes, Rng& rng,
                                       int64_t image_size = 0 /* 0: the model's default */);

}  // namespace ffr
