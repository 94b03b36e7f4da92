// A frozen copy of a trained model, prepared once for fast forward passes: what inference runs
// (InferenceModel, `ffr-bench perf --inference`) where one exists for the model, build and
// device. Today: ResNets on the CPU in float32 with oneDNN (layers/resnet_inference_plan.h).
//
// A plan is a SNAPSHOT: it copies (and transforms) the weights when it is made, so a model that
// changes afterwards is not seen. Training and the trainer's evaluation never use one; only code
// whose weights are final (a loaded checkpoint) does. Not thread-safe: one caller at a time.
//
// FFR_INFERENCE_PLAN=off makes make_inference_plan return null (to measure without plans).
#pragma once

#include "engine/tensor.h"
#include "layers/classifier.h"

#include <memory>
#include <string>

namespace ffr {

class InferencePlan {
 public:
  virtual ~InferencePlan() = default;
  // [N, 3, H, W] float32 CPU images -> [N, feature_dim] features, as model.features() in eval
  // mode gives them (up to float32 rounding: the plan folds batch norm into the convolutions).
  virtual Tensor features(const Tensor& images) = 0;
  // What runs: the kernels of the shapes seen so far (for profiles and tests).
  virtual std::string describe() const = 0;
};

// A plan for `model` in its current state, or null where none exists (another architecture,
// device or dtype, a build without oneDNN, or FFR_INFERENCE_PLAN=off).
std::unique_ptr<InferencePlan> make_inference_plan(const Classifier& model);

}  // namespace ffr
