// One training stage: epochs of a training method over a list of samples, each followed by an
// evaluation on the real validation split; the epoch with the best validation WA is kept (in
// memory, and through a callback on disk). A run is one or two stages (ffr/stages.h).
//
// The step never reads the device: the loss is accumulated on the device and read once per epoch
// with the validation counts; GroupDRO's weights stay on the device across steps and epochs.
#pragma once

#include "data/groups.h"
#include "data/loader.h"
#include "ffr/experiment.h"
#include "layers/classifier.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace ffr {

// One line of metrics.jsonl.
struct EpochMetrics {
  std::string stage;        // "stage 1", "stage 2", "train"
  int64_t epoch = 0;        // 1-based
  double train_loss = 0.0;  // mean of the batch losses (GroupDRO: the q-weighted loss)
  double val_worst_group_accuracy = 0.0;
  double val_balanced_accuracy = 0.0;
  double seconds = 0.0;     // training and validation of this epoch
  double images_per_second = 0.0;  // training images / training seconds
  bool best = false;        // this epoch became the stage's selected one
};

// What a stage trains on and how.
struct StagePlan {
  std::string name;             // "stage 1", "stage 2" or "train"
  data::IndexList samples;
  TrainingMethod method = TrainingMethod::ERM;  // ERM, Resampling or GroupDRO (DFR trains with ERM)
  bool source_groups = false;   // the method's groups are (y, b, g) rather than (y, b)
  double learning_rate = 1e-4;
  int64_t epochs = 1;
  bool freeze_batch_norm = false;
  uint64_t sampler_seed = 0;
};

// Counts training steps over the whole run for images/s and the ETA of progress reports.
struct RunClock {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  int64_t total_steps = 0;  // every stage's steps, planned up front
  int64_t steps_done = 0;
};

// What every stage of a run shares.
struct TrainingContext {
  const data::Manifest* manifest = nullptr;
  const data::GroupIndex* groups = nullptr;
  data::IndexList val;          // real validation split
  Device device = Device::cpu();
  data::LoaderConfig loader;
  int64_t batch_size = 128;
  double weight_decay = 1e-5;   // Adam's coupled L2
  double groupdro_step_size = 0.01;
  double groupdro_adjustment = 0.0;
  ProgressCallback progress;
  std::function<void(const EpochMetrics&)> on_epoch;  // metrics.jsonl
  // A new best epoch: the model holds its weights now (best.safetensors).
  std::function<void(const Classifier&, const EpochMetrics&)> on_new_best;
  RunClock* clock = nullptr;
};

struct StageOutcome {
  NamedTensors best_state;  // the selected epoch's state dict (device copies)
  int64_t best_epoch = -1;  // 1-based
  SplitMetrics best_val;
};

// Steps of one epoch of `plan` (for RunClock::total_steps).
int64_t stage_steps_per_epoch(const StagePlan& plan, int64_t batch_size);

// Trains `model` (already on the context's device) for plan.epochs epochs with a fresh Adam, and
// returns the best epoch. The model is left at the last epoch's weights; load best_state to use
// the selected one.
StageOutcome train_stage(Classifier& model, const StagePlan& plan, const TrainingContext& context);

// Epoch selection: higher val WA wins; on equal WA, higher BA; on equal both, the earlier epoch.
bool better_epoch(const SplitMetrics& candidate, const SplitMetrics& incumbent);

}  // namespace ffr
