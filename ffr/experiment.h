// One FFR experiment configuration (a cell of a grid, with one seed) and what running it gives.
// The trainer implements run_experiment(); grids, the CLI and the default demo call it.
#pragma once

#include "data/protocol.h"
#include "engine/device.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace ffr::comm {
class Communicator;  // engine/comm/communicator.h
}

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
  // The data's content: SHA-256 (hex) of the manifest CSV and of its sidecar, set by run_experiment
  // (with_data_hashes) and recorded in config.json and result.json, so a run is keyed on its data
  // and not only on the path. Empty in a configuration as asked, and in run folders written before
  // runs recorded it (those cannot be checked and are taken as they are).
  std::string manifest_sha256, sidecar_sha256;
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
  // FFR stage 2: BN layers in eval mode (running statistics frozen), scale/shift still trained,
  // as the authors' code does. freeze_batch_norm_affine also freezes scale/shift (what
  // freeze_batch_norm meant before: config files without the key read it that way).
  bool freeze_batch_norm = false;
  bool freeze_batch_norm_affine = false;
  double groupdro_step_size = 0.01;      // eta
  double groupdro_adjustment = 0.0;      // C in C / sqrt(n_k)
  // DFR: balanced refits averaged into the head (DFR's reference: 20). In config files for DFR
  // runs only; a DFR config without it was made with 5, the count before, so it is not reused.
  int dfr_refits = 20;
  // Table 5's synthetic data: 2 = its own pool of class-only-prompt images (prompt_kind agnostic).
  // In config files for bias-agnostic runs only; one without it was made by an engine that took
  // the bias-aware pool with b ignored (version 1): never reused, and not run again.
  int agnostic_pool_version = 2;
  // execution
  uint64_t seed = 0;                     // links stage 1 and 2, subsampling, init, sampling
  std::string device = "auto";           // auto | cpu | cuda
  // auto (tf32 on CUDA, fp32 on the CPU) | fp32 | tf32 | bf16: engine/precision.h. tf32 on the
  // CPU computes as fp32 (there are no TF32 units).
  std::string precision = "auto";
  bool deterministic = false;
  int loader_workers = 2;
  // CPU compute threads (engine/parallel.h; OpenBLAS's too); 0: the machine's cores. Where a run
  // goes, not its numbers (the CPU kernels give the same bits on any count), so resume and the
  // grid's run names ignore it; result.json records the count used.
  int compute_threads = 0;
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
  SplitMetrics val;                    // real validation, at the selected (best-WA) epoch; DFR:
                                       // its held-out half, scored by the tuned C's head (ffr/dfr.h)
  SplitMetrics test;                   // real test, at the selected epoch
  SplitMetrics test_synthetic;         // held-out synthetic test (Table 3); empty groups if none
  int64_t best_epoch = -1;             // of the last stage (1-based)
  int64_t stage1_best_epoch = -1;      // of the first of two stages (FFR's stage 1; the real stage
                                       // for stage2-then-1); -1 for single-stage runs
  double seconds = 0.0;
  std::string device;                  // where it ran, in words ("cuda:0 NVIDIA H100 ...", "cpu")
  std::string precision;               // what it ran with: fp32, tf32 or bf16 ("auto" resolved)
  int compute_threads = 0;             // CPU compute threads it ran with (0 in older result files)
  // The majority share the bias ratio gave the real train and val splits (data/protocol.h): the
  // ratio the run really trained and selected at, which whole samples and the per-group floors
  // can move from config.bias_ratio. NaN when unknown (result files written before this).
  double train_majority_share = std::numeric_limits<double>::quiet_NaN();
  double val_majority_share = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::string> warnings;   // the protocol's (ExperimentSplits::warnings)
  // DFR only (NaN otherwise): the regularisation C chosen on val's held-out half, and its WA there.
  double dfr_c = std::numeric_limits<double>::quiet_NaN();
  double dfr_tuning_worst_group_accuracy = std::numeric_limits<double>::quiet_NaN();
  int dfr_refits = 0;                  // DFR: refits averaged into the head (0: not DFR)
  // DFR: the ERM backbone's real validation metrics at its selected epoch, before the head was
  // refitted on val. DFR's protocol selects the backbone by these (the head has seen val, so the
  // refitted model's val numbers are in-sample). Empty groups otherwise.
  SplitMetrics backbone_val;
  // probe-features on the final model (ffr/feature_probe.h): a linear probe's accuracy telling
  // held-out real from held-out synthetic images by their penultimate features (0.5: chance).
  // NaN when the data has no held-out synthetic images (or in results written before).
  double feature_probe_accuracy = std::numeric_limits<double>::quiet_NaN();

  // What model selection compares across settings: val WA, or for DFR the backbone's val WA
  // (val WA for DFR results written before backbone_val was recorded).
  double selection_worst_group_accuracy() const {
    return config.method == TrainingMethod::DFR && !backbone_val.groups.empty() ? backbone_val.worst_group_accuracy
                                                                                : val.worst_group_accuracy;
  }
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
// A folder holding a completed run of the same experiment (same_experiment) on the same data
// (manifest and sidecar content, with_data_hashes) is not rerun: its result is returned. A
// completed run of another configuration or of other data is refused (InputError). An unfinished
// run (killed, out of memory, stopped on a NaN) goes on from its last complete epoch
// (resume.safetensors, ffr/resume_state.h); one of another configuration or data is refused. A folder
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

// The same run as one rank of a data-parallel run (ffr/data_parallel.h): every rank calls this
// with the same arguments; every rank resumes from the folder's resume file, and rank 0 alone
// writes the folder (config, metrics, checkpoints, resume file, result).
struct DataParallel {
  comm::Communicator* communicator = nullptr;  // null: one process, as run_experiment
  bool sync_batch_norm = false;                // BN statistics over the global batch (--sync-bn)
};
ExperimentResult run_experiment_data_parallel(const ExperimentConfig& config, const std::string& run_dir,
                                             const ProgressCallback& progress, const DataParallel& parallel);

// Reads a completed run's result.json (InputError naming the file if missing or malformed).
ExperimentResult read_result(const std::string& run_dir);

// ExperimentConfig::device as a Device: "auto" (the GPU when one answers, else the CPU), "cpu" or
// "cuda" (InputError saying why when no GPU is usable).
Device resolve_device(const std::string& name);

// The protocol's warnings for `config` (data/protocol.h: a bias ratio the data expresses only
// approximately), for the CLI to show before training; InputError for a ratio the data cannot
// express at all, or for synthetic data the manifest lacks (too few images for the mode, no
// bias-agnostic pool). Reads the manifest and draws the splits' indices (no image is read).
std::vector<std::string> bias_ratio_warnings(const ExperimentConfig& config);

// True when `run_dir` holds a result.json (a completed run).
bool has_result(const std::string& run_dir);

// `config` with manifest_sha256 and sidecar_sha256 set from the files as they are now. Only the
// manifest CSV and its sidecar are hashed, not every image: that costs a read of two small files
// per run rather than of the whole data set, and a rebuild (prepare --force with another seed,
// ratio, severity or size) always changes them (orig_id, counts, generator, image_size). A data set
// whose images were replaced in place under the same names is not noticed.
ExperimentConfig with_data_hashes(const ExperimentConfig& config);

// Throws InputError when `recorded` (the configuration a run folder's `record_file` holds) was run
// on other data than `current` (with_data_hashes), naming the file that changed and `way_out`.
// A record without hashes (an older run folder) is not checked.
void check_same_data(const ExperimentConfig& recorded, const ExperimentConfig& current, const std::string& record_file,
                     const std::string& way_out);

// True when `run_dir` holds a completed run of `config` (same_experiment) made on other data than
// the manifest's files (or its --init file) hold now: what `ffr-bench run --restart` starts over.
bool completed_on_other_data(const std::string& run_dir, const ExperimentConfig& config);

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
