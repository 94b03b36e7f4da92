// What every model gives the trainer: penultimate features (DFR's input, the t-SNE embeddings)
// and a linear head that can be re-initialised for another class count.
#pragma once

#include "engine/rng.h"
#include "layers/linear.h"
#include "layers/module.h"

#include <memory>
#include <string>

namespace ffr {

class Classifier : public Module {
 public:
  // [N, 3, H, W] float images -> [N, feature_dim()].
  virtual Tensor features(const Tensor& images) = 0;
  Tensor forward(const Tensor& images) { return head().forward(features(images)); }

  virtual Linear& head() = 0;
  virtual int64_t feature_dim() const = 0;
  virtual int64_t num_classes() const = 0;
  // A fresh head for `classes` outputs (same init rule as the model's own), on the model's device.
  virtual void reset_head(int64_t classes, Rng& rng) = 0;
  // The architecture name ("resnet50", "vit_b32", ...), stored in checkpoint metadata.
  virtual std::string architecture() const = 0;
};

}  // namespace ffr
