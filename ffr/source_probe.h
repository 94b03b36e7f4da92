// How well a classifier tells real from synthetic images (label = source g), the check behind
// the paper's premise that synthetic images carry a "generator fingerprint" (and behind FFR's
// choice never to mix sources in one stage). Trained on a balanced mix of real train and
// synthetic train images, scored on held-out real and synthetic images, never seen in training.
#pragma once

#include "ffr/experiment.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ffr {

struct SourceProbeConfig {
  std::string manifest;
  std::string model = "resnet_tiny";
  int64_t image_size = 0;        // 0: the manifest's
  int64_t epochs = 3;
  double learning_rate = 1e-3;
  double weight_decay = 1e-5;
  int64_t batch_size = 128;
  double bias_ratio = 0.0;       // > 0: real train subsampled to this ratio first (as a run sees it)
  int64_t max_per_source = 0;    // > 0: at most this many training images of each source
  uint64_t seed = 0;
  std::string device = "auto";
  int loader_workers = 2;
};

struct SourceProbeClass {
  int y = 0;
  int64_t correct = 0, total = 0;  // held-out images of class y, both sources
  int64_t real_correct = 0, real_total = 0;
  int64_t synthetic_correct = 0, synthetic_total = 0;
};

struct SourceProbeResult {
  int64_t train_per_source = 0;    // real = synthetic in training
  int64_t heldout_per_source = 0;  // real = synthetic in the held-out set
  std::string heldout_description; // which splits the held-out images came from
  double accuracy = 0.0;           // held-out, both sources (balanced, so 0.5 is chance)
  double real_accuracy = 0.0;      // held-out real images called real
  double synthetic_accuracy = 0.0; // held-out synthetic images called synthetic
  std::vector<SourceProbeClass> per_class;
  std::vector<double> train_loss;  // per epoch
  std::string device;
  double seconds = 0.0;
};

// Held-out set: the test split's real images and its held-out synthetic images (the val split's
// when test has none), cut to equal counts at random. Throws InputError when the manifest has no
// synthetic training images or no held-out ones.
SourceProbeResult probe_source(const SourceProbeConfig& config, const ProgressCallback& progress = {});

}  // namespace ffr
