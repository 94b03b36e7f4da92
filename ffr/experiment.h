// One FFR experiment configuration (a cell of a grid, with one seed) and what running it gives.
// The trainer implements run_experiment(); grids, the CLI and the default demo call it.
#pragma once

#include "data/protocol.h"
#include "engine/device.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ffr {

enum class TrainingMethod { ERM, Resampling, GroupDRO, DFR };
const char* method_name(TrainingMethod m);              // "erm", "resampling", "groupdro", "dfr"
TrainingMethod parse_method(const std::string& name);   // throws InputError naming the flag value

// Which stages run (the paper's Table 1). Full = FFR (stage 1 then 2) for augmentation FFR, a
// single training run for None/USB/ASB.
enum class StageOrder { Full, Stage1Only, Stage2Only, Stage2Then1 };
const char* stage_order_name(StageOrder s);             // "full", "stage1", "stage2", "stage2-then-1"
StageOrder parse_stage_order(const std::string& name);

// The shape of FFR's synthetic set: "balanced", "biased" (Table 2), "agnostic" (Table 5).
const char* synthetic_distribution_name(data::SyntheticDistribution d);
data::SyntheticDistribution parse_synthetic_distribution(const std::string& name);

struct ExperimentConfig {
  // data
  std::string manifest;                  // CSV path (JSON sidecar beside it)
  double bias_ratio = 0.99;
  data::Augmentation augmentation = data::Augmentation::None;
  data::SyntheticDistribution synthetic = data::SyntheticDistribution::Balanced;
  StageOrder stages = StageOrder::Full;
  // model and training (the paper's: Adam, coupled L2 1e-5, batch 128)
  std::string model = "resnet26_small";
  int64_t image_size = 0;                // 0: the manifest's image_size
  TrainingMethod method = TrainingMethod::ERM;
  double learning_rate = 1e-4;           // stage 2 (and single-stage runs)
  double stage1_learning_rate = 1e-4;    // FFR stage 1
  double weight_decay = 1e-5;
  int64_t batch_size = 128;
  int64_t epochs = 20;                   // stage 2 (and single-stage runs)
  int64_t stage1_epochs = 20;
  bool freeze_batch_norm = false;        // FFR stage 2: BN statistics (and affine) frozen
  double groupdro_step_size = 0.01;      // eta
  double groupdro_adjustment = 0.0;      // C in C / sqrt(n_k)
  // execution
  uint64_t seed = 0;                     // links stage 1 and 2, subsampling, init, sampling
  std::string device = "auto";           // auto | cpu | cuda
  bool deterministic = false;
  int loader_workers = 2;
  int64_t max_train_samples = 0;         // 0: all; else a seeded per-group-proportional cap (demo, tests)
  // pretrained start (ffr/init_weights.h): the first stage starts from these weights
  std::string init_weights;              // safetensors file; "" = train from the model's own init
  std::string init_sha256;               // its SHA-256: run_experiment fills it in (a resume refuses a change); a
                                         // grid sets it when planning, so run names follow the content
  bool keep_head = false;                // load the file's classifier head too (needs the same class count)
};

// Per-group accuracy on one split: the groups of the data set, in GroupIndex order.
struct GroupAccuracy {
  int y = 0, b = 0;
  int64_t correct = 0, total = 0;
  double accuracy() const { return total > 0 ? double(correct) / double(total) : 0.0; }
};

struct SplitMetrics {
  double worst_group_accuracy = 0.0;  // WA
  double balanced_accuracy = 0.0;     // BA (unweighted mean over groups)
  double average_accuracy = 0.0;      // plain accuracy over samples, for reference
  std::vector<GroupAccuracy> groups;
};

struct ExperimentResult {
  ExperimentConfig config;
  SplitMetrics val;                    // real validation, at the selected (best-WA) epoch
  SplitMetrics test;                   // real test, at the selected epoch
  SplitMetrics test_synthetic;         // held-out synthetic test (Table 3); empty groups if none
  int64_t best_epoch = -1;             // of the last stage (1-based)
  int64_t stage1_best_epoch = -1;      // of the first of two stages (FFR's stage 1; the real stage
                                       // for stage2-then-1); -1 for single-stage runs
  double seconds = 0.0;
  std::string device;                  // where it ran, in words ("cuda:0 NVIDIA H100 ...", "cpu")
};

// Progress of long work, for the CLI (the library never prints).
struct Progress {
  std::string stage;       // "stage 1", "stage 2", "train"
  int64_t epoch = 0, epochs = 0;
  int64_t step = 0, steps = 0;
  double images_per_second = 0.0;
  double eta_seconds = 0.0;
  double val_worst_group_accuracy = -1.0;  // after an epoch's validation, else -1
  bool epoch_done = false;  // the epoch's last report (after its validation, where there is one)
};
using ProgressCallback = std::function<void(const Progress&)>;

// Runs one configuration and writes its run folder (DESIGN.md): config.json, metrics.jsonl
// (one line per epoch), groups.csv (per-group table), best.safetensors (best-WA checkpoint),
// result.json (written last, atomically: its presence means the run is complete).
//
// A folder holding a completed run of the same experiment (same_experiment) is not rerun: its
// result is returned. A completed run of another configuration is refused (InputError). An
// unfinished run (killed, out of memory, stopped on a NaN) goes on from its last complete epoch
// (resume.safetensors, ffr/resume_state.h); one of another configuration is refused. A folder
// without result.json or resume.safetensors is cleaned (only the files a run writes are removed)
// and the run starts over.
//
// Errors while training: NumericalError (NaN/Inf: the step and first layer) and OutOfMemoryError
// name the folder and what a rerun would resume from.
//
// Model selection: after each epoch, WA on the real validation split; the epoch with the highest
// WA is kept (ties: the higher BA, then the earlier epoch). Methods, stages and groups follow
// FFR_PROTOCOL.md; see ffr/stages.h for how each StageOrder maps onto training stages.
ExperimentResult run_experiment(const ExperimentConfig& config, const std::string& run_dir,
                                const ProgressCallback& progress = {});

// Reads a completed run's result.json (InputError naming the file if missing or malformed).
ExperimentResult read_result(const std::string& run_dir);

// ExperimentConfig::device as a Device: "auto" (the GPU when one answers, else the CPU), "cpu" or
// "cuda" (InputError saying why when no GPU is usable).
Device resolve_device(const std::string& name);

// True when `run_dir` holds a result.json (a completed run).
bool has_result(const std::string& run_dir);

// The run folder's file names.
inline constexpr const char* kConfigFile = "config.json";
inline constexpr const char* kMetricsFile = "metrics.jsonl";
inline constexpr const char* kGroupsFile = "groups.csv";
inline constexpr const char* kCheckpointFile = "best.safetensors";
inline constexpr const char* kResultFile = "result.json";
// An unfinished run's state after its last complete epoch (ffr/resume_state.h); removed once the
// run completes.
inline constexpr const char* kResumeFile = "resume.safetensors";

}  // namespace ffr
