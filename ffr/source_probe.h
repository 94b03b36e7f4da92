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
  // Training runs until the training accuracy plateaus: it stops after `patience` epochs without
  // a rise of kProbePlateauRise in training accuracy (or once it reaches 99.9%), and after
  // `epochs` at most. patience 0: exactly `epochs` epochs.
  int64_t epochs = 30;
  int64_t patience = 3;
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

// What the probe's numbers allow to say about the data. Inconclusive when the probe did not learn:
// on its own (balanced) training mix it does not beat both a constant (50 %) and the same model
// untrained (a random network can score 60 % by chance) by more than max(5 points, two standard
// errors of a coin); "untrained" is the initial weights with the batch-norm statistics training
// left. Then a low held-out score says nothing about the images. Otherwise by
// held-out accuracy: >= 75 % easy to tell apart, >= 60 % distinguishable, else hard to tell apart.
enum class SourceProbeVerdict { Inconclusive, EasyToTellApart, Distinguishable, HardToTellApart };

inline constexpr double kProbePlateauRise = 0.005;  // training accuracy, per `patience` epochs

struct SourceProbeResult {
  int64_t train_per_source = 0;    // real = synthetic in training
  int64_t heldout_per_source = 0;  // real = synthetic in the held-out set
  std::string heldout_description; // which splits the held-out images came from
  double accuracy = 0.0;           // held-out, both sources (balanced, so 0.5 is chance)
  double real_accuracy = 0.0;      // held-out real images called real
  double synthetic_accuracy = 0.0; // held-out synthetic images called synthetic
  std::vector<SourceProbeClass> per_class;
  std::vector<double> train_loss;  // per epoch
  std::vector<double> train_running_accuracy;  // per epoch, while training (what the plateau watches)
  int64_t epochs_run = 0;
  // The final model on its own training mix (eval mode): did it learn anything?
  double train_accuracy = 0.0, train_real_accuracy = 0.0, train_synthetic_accuracy = 0.0;
  double untrained_train_accuracy = 0.5;  // the initial weights (BN statistics as trained) on the same images
  bool learned = false;
  SourceProbeVerdict verdict = SourceProbeVerdict::Inconclusive;
  std::string device;
  double seconds = 0.0;
};

// The verdict from a result's numbers (probe_source sets `learned` and `verdict` with it).
SourceProbeVerdict source_probe_verdict(const SourceProbeResult& result);
// The verdict in words, with the numbers behind an inconclusive one.
std::string source_probe_verdict_text(const SourceProbeResult& result);

// Held-out set: the test split's real images and its held-out synthetic images (the val split's
// when test has none), cut to equal counts at random. Throws InputError when the manifest has no
// synthetic training images or no held-out ones.
SourceProbeResult probe_source(const SourceProbeConfig& config, const ProgressCallback& progress = {});

}  // namespace ffr
