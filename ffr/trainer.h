// One training stage: epochs of a training method over a list of samples, each followed by an
// evaluation on the real validation split; the epoch with the best validation WA is kept (in
// memory, and through a callback on disk). A run is one or two stages (ffr/stages.h).
//
// The step never reads the device: the loss is accumulated on the device and read once per epoch
// with the validation counts; GroupDRO's weights stay on the device across steps and epochs.
//
// Divergence: after each backward pass one launch checks the loss and every gradient for NaN/Inf
// (ffr/numeric_guard.h) and records the first bad step on the device; Adam skips its update once
// that is set, so the weights stay those of the last finite step. The host looks at the record
// without waiting (CPU: at once; CUDA: when its asynchronous copy has landed) and, at the latest,
// at the epoch's end, before validation and before anything is written. A hit stops the stage with
// a NumericalError naming the step and the first layer: the first layer whose forward output is
// not finite (the step's batch is loaded again and replayed with a LayerProbe) when the loss is,
// else the parameter nearest the loss whose gradient is not. The epoch's checkpoint is then never
// written: the last good one stays.
#pragma once

#include "data/groups.h"
#include "data/loader.h"
#include "ffr/experiment.h"
#include "layers/classifier.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace ffr::comm {
class Communicator;
}

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
  // Freeze BN: the layers stay in eval mode (running statistics kept); their scale/shift still
  // train unless freeze_batch_norm_affine (the authors' code freezes the statistics only).
  bool freeze_batch_norm = false;
  bool freeze_batch_norm_affine = false;
  uint64_t sampler_seed = 0;
};

// Counts training steps over the whole run for images/s and the ETA of progress reports.
struct RunClock {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  int64_t total_steps = 0;  // every stage's steps, planned up front
  int64_t steps_done = 0;
  int64_t steps_at_start = 0;  // steps a resumed run had done before `start`
};

struct StageOutcome {
  NamedTensors best_state;  // the selected epoch's state dict (device copies)
  int64_t best_epoch = -1;  // 1-based
  SplitMetrics best_val;
};

// Where a stage stands after `epochs_done` complete epochs: what resuming it needs
// (ffr/resume_state.h). Given to TrainingContext::on_epoch_complete with live tensors (write them
// before the next step); given back to train_stage to go on from there.
struct StageProgress {
  int64_t epochs_done = 0;
  NamedTensors optimizer;  // Adam's state_tensors()
  Tensor group_weights;    // GroupDRO's q; undefined for other methods
  StageOutcome best;       // the best epoch so far
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
  // The epoch is complete (after on_new_best and on_epoch): the resume point. The model holds the
  // epoch's weights.
  std::function<void(const Classifier&, const StageProgress&)> on_epoch_complete;
  RunClock* clock = nullptr;
  // Data parallelism (ffr/data_parallel.h): this process is one rank and trains on its slice of
  // every global batch of batch_size. Null (or one rank): the whole batch here.
  comm::Communicator* communicator = nullptr;
  bool sync_batch_norm = false;  // with a communicator: BN statistics over the global batch
};


class Adam;

// The trainer's optimizer: Adam with coupled L2 (as torch.optim.Adam, the paper's) over the
// parameters that still learn (frozen BN affine parameters drop out).
std::unique_ptr<Adam> make_optimizer(const Classifier& model, double learning_rate, double weight_decay);

// Steps of one epoch of `plan` (for RunClock::total_steps).
int64_t stage_steps_per_epoch(const StagePlan& plan, int64_t batch_size);

// Trains `model` (already on the context's device) for plan.epochs epochs with a fresh Adam, and
// returns the best epoch. The model is left at the last epoch's weights; load best_state to use
// the selected one. With `resume`, the model already holds the weights after resume->epochs_done
// epochs; the optimizer, GroupDRO weights and best epoch come from `resume`, and training goes on
// with the next epoch's first batch. Throws NumericalError when the loss or a gradient goes
// NaN/Inf (see the top of this file).
StageOutcome train_stage(Classifier& model, const StagePlan& plan, const TrainingContext& context,
                         const StageProgress* resume = nullptr);

// Epoch selection: higher val WA wins; on equal WA, higher BA; on equal both, the earlier epoch.
bool better_epoch(const SplitMetrics& candidate, const SplitMetrics& incumbent);

}  // namespace ffr
