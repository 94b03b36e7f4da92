// Classifier checkpoints: the model's state dict in safetensors (torchvision/timm names) with the
// metadata needed to rebuild it (architecture, class count, image size), so `ffr-bench eval` and
// other tools can load a run's best.safetensors without being told what model it holds.
#pragma once

#include "engine/tensor.h"
#include "layers/classifier.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ffr {

struct CheckpointInfo {
  std::string architecture;  // a model_zoo name
  int64_t num_classes = 0;
  int64_t image_size = 0;    // the input side the model was trained at
  // Anything else worth keeping with the weights: the run's config (JSON), stage, epoch, val WA.
  std::map<std::string, std::string> extra;
};

// Writes `state` (any device) atomically, with `info` as safetensors metadata.
void save_checkpoint(const std::string& path, const NamedTensors& state, const CheckpointInfo& info);

struct LoadedCheckpoint {
  std::unique_ptr<Classifier> model;  // rebuilt from the metadata, weights loaded, on `device`
  CheckpointInfo info;
};

// Throws InputError naming the file when it is not a classifier checkpoint (metadata missing) or
// its tensors do not match the architecture it names.
LoadedCheckpoint load_checkpoint(const std::string& path, Device device = Device::cpu());

// Checks that a checkpoint fits a data set's classes (`ffr-bench eval`): the class count always,
// and the class names, in order, when the checkpoint records them (metadata "class_names", written
// by run_experiment) unless `ignore_class_names`. A model of one class set scored on a data set of
// another with the same count would otherwise give numbers that mean nothing. InputError listing
// both sets of names.
void check_checkpoint_classes(const CheckpointInfo& info, const std::string& checkpoint_path,
                              const std::vector<std::string>& class_names, const std::string& manifest_path,
                              bool ignore_class_names);

}  // namespace ffr
