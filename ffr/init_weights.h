// Starting a run from pretrained weights (`ffr-bench run/grid --init FILE.safetensors`): an
// ImageNet ResNet-50 or ViT-B/32 converted by tools/convert_weights.py, or any checkpoint the
// engine wrote (best.safetensors). Names follow torchvision/timm, so the file's tensors map one to
// one onto the model's state dict.
//
// Every tensor outside the classifier head must match the model exactly: name, shape and dtype
// (a file of another model or width is a user mistake, never silently half-loaded). The head
// (torchvision's fc.*, timm's head.*) belongs to the pretraining task: by default the model keeps
// its own freshly initialised head for the data set's class count; with keep_head the file's head
// is loaded, which needs it to have that class count.
#pragma once

#include "layers/classifier.h"

#include <string>

namespace ffr {

struct InitWeightsReport {
  std::string head_prefix;   // "fc." or "head.": the head's names in the file and the model
  int64_t loaded = 0;        // tensors copied from the file
  bool head_from_file = false;
};

// Copies the file's tensors into `model` (on any device). Throws one InputError naming the file
// and listing the first names that differ (missing, unexpected, shape, dtype) with their count;
// with keep_head, also when the file has no head or one for another class count.
InitWeightsReport load_init_weights(Classifier& model, const std::string& path, bool keep_head);

// The qualified name of the model's head module with a trailing dot ("fc.", "head.").
std::string head_prefix(const Classifier& model);

}  // namespace ffr
