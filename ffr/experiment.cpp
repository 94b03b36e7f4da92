// run_experiment: manifest -> protocol splits -> stages (ffr/stages.h) -> trainer -> DFR head
// (if asked) -> evaluation of the selected weights -> run folder.
#include "ffr/experiment.h"

#include <nlohmann/json.hpp>

#include "data/manifest.h"
#include "engine/build_info.h"
#include "engine/comm/communicator.h"
#include "engine/error.h"
#include "engine/fault_injection.h"
#include "engine/parallel.h"
#include "engine/precision.h"
#include "engine/rng.h"
#include "engine/settings.h"
#include "engine/sha256.h"
#include "ffr/checkpoint.h"
#include "ffr/dfr.h"
#include "ffr/feature_probe.h"
#include "ffr/evaluation.h"
#include "ffr/experiment_json.h"
#include "ffr/init_weights.h"
#include "ffr/resume_state.h"
#include "ffr/run_folder.h"
#include "ffr/stages.h"
#include "layers/model_zoo.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

namespace ffr {

namespace {

constexpr uint64_t kModelInitStream = 200;  // the trainer's other streams are in ffr/stages.cpp

// "cpu (2 threads)" or "cuda:0 NVIDIA H100 ...": the GPU's line of the device report.
std::string describe_device(Device device) {
  if (device.is_cpu()) return detail::concat("cpu (", std::thread::hardware_concurrency(), " threads)");
  std::istringstream report(device_report());
  const std::string prefix = detail::concat("  GPU ", device.index, ": ");
  for (std::string line; std::getline(report, line);) {
    if (line.compare(0, prefix.size(), prefix) == 0) return device.str() + " " + line.substr(prefix.size());
  }
  return device.str();
}

// DFR: the backbone stays, the head is refitted on the penultimate features of the real
// validation split (ffr/dfr.h) and written into the model. Returns the fit and the validation
// numbers DFR reports: those of its held-out half (the head that scored them never saw it; the
// refit head has seen all of val, so its score there would be a training score).
DfrResult refit_head_with_dfr(Classifier& model, const data::Manifest& manifest, const data::IndexList& val,
                              const data::GroupIndex& groups, const EvalOptions& eval, uint64_t seed,
                              int refits, SplitMetrics& heldout_val) {
  const FeatureSet f = extract_features(model, manifest, val, groups, eval);
  DfrOptions options;
  options.num_retrains = refits;
  DfrResult dfr = fit_dfr(f.features, f.labels, f.groups, model.num_classes(), groups.num_groups(), seed, options);
  model.head().weight.copy_(dfr.weight);
  model.head().bias.copy_(dfr.bias);

  // The held-out predictions as one-hot logits through the same counting as every other split.
  const int64_t n = int64_t(dfr.heldout_rows.size()), classes = model.num_classes();
  std::vector<float> logits(size_t(n * classes), 0.0f);
  std::vector<int64_t> labels(static_cast<size_t>(n)), group_ids(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const size_t row = size_t(dfr.heldout_rows[size_t(k)]);
    logits[size_t(k * classes + dfr.heldout_predictions[size_t(k)])] = 1.0f;
    labels[size_t(k)] = f.labels[row];
    group_ids[size_t(k)] = f.groups[row];
  }
  SubgroupAccuracy accuracy(groups.num_groups());
  if (n > 0) {
    accuracy.update(Tensor::from_vector(logits, {n, classes}), Tensor::from_vector(labels, {n}),
                    Tensor::from_vector(group_ids, {n}));
  }
  heldout_val = split_metrics(accuracy.summary(), groups);
  return dfr;
}

// Model selection needs real validation images, and DFR needs every group in both of its halves:
// said now rather than after training.
void check_validation_split(const ExperimentConfig& config, const data::Manifest& manifest,
                            const data::IndexList& val, const data::GroupIndex& groups) {
  if (val.empty()) throw InputError(config.manifest + ": no real validation images (split 'val', source 'real')");
  if (config.method != TrainingMethod::DFR) return;
  const data::GroupCounts counts = data::count_groups(manifest, val, groups);
  for (int g = 0; g < groups.num_groups(); ++g) {
    if (counts[size_t(g)] < 2) {
      const auto [y, b] = groups.pair(g);
      throw InputError(detail::concat(config.manifest, ": DFR needs at least 2 real validation images of every group; (y=",
                                      y, ", b=", b, ") has ", counts[size_t(g)], " at bias ratio ", config.bias_ratio));
    }
  }
}

// config.init_weights' digest, checked against init_sha256 when the caller gave one (a grid hashes
// the file once when it plans its runs: a file replaced since then is refused, not mixed in).
ExperimentConfig with_init_weights_hash(const ExperimentConfig& requested) {
  ExperimentConfig config = requested;
  if (config.init_weights.empty()) return config;
  const std::string digest = sha256_file_hex(config.init_weights);
  if (!config.init_sha256.empty() && config.init_sha256 != digest) {
    throw InputError(config.init_weights + ": its SHA-256 is " + digest + ", not " + config.init_sha256 +
                     " as planned: the file changed");
  }
  config.init_sha256 = digest;
  return config;
}

// A run started from an init file goes on (or is reused) only from that very file.
void refuse_changed_init_weights(const ExperimentConfig& saved, const ExperimentConfig& config,
                                 const std::string& saved_in) {
  if (saved.init_weights.empty() || saved.init_weights != config.init_weights) return;
  if (saved.init_sha256 != config.init_sha256) {
    throw InputError(saved_in + ": this run started from " + saved.init_weights + " with SHA-256 " +
                     saved.init_sha256 + ", but the file now has SHA-256 " + config.init_sha256 +
                     "; restore the file, or delete the run folder (or run with --restart) to start over");
  }
}

// The folder's resume file, when it holds an unfinished run of this very experiment; nullopt when
// there is none. Anything else there is refused, naming the file: a run of another configuration
// (resuming it would mix two experiments) or a file this build cannot read.
std::optional<ResumeState> read_resume_state(const RunFolder& folder, const ExperimentConfig& config,
                                             const std::vector<StagePlan>& stages) {
  const std::string path = folder.path(kResumeFile);
  if (!std::filesystem::exists(path)) return std::nullopt;
  const std::string start_over = "; delete it (or run with --restart) to start over";
  ResumeState state;
  try {
    state = load_resume_state(path);
  } catch (const InputError& e) {
    throw InputError(e.what() + start_over);
  }
  const ExperimentConfig recorded = config_from_json(state.config_json, path + " (metadata config)");
  refuse_changed_init_weights(recorded, config, path);
  if (!same_experiment(recorded, config)) {
    throw InputError(path + ": holds an unfinished run of another configuration" + start_over);
  }
  check_same_data(recorded, config, path,
                  "run with --restart to start it over on the current data, or choose a new --out");
  if (state.stage_index >= int64_t(stages.size()) || stages[size_t(state.stage_index)].name != state.stage_name) {
    throw InputError(detail::concat(path, ": saved in stage '", state.stage_name, "' (index ", state.stage_index,
                                    "), which this configuration does not have", start_over));
  }
  return state;
}

}  // namespace

const char* method_name(TrainingMethod m) {
  switch (m) {
    case TrainingMethod::ERM: return "erm";
    case TrainingMethod::Resampling: return "resampling";
    case TrainingMethod::GroupDRO: return "groupdro";
    case TrainingMethod::DFR: return "dfr";
  }
  return "?";
}

TrainingMethod parse_method(const std::string& name) {
  for (TrainingMethod m : {TrainingMethod::ERM, TrainingMethod::Resampling, TrainingMethod::GroupDRO, TrainingMethod::DFR}) {
    if (name == method_name(m)) return m;
  }
  throw InputError("unknown training method '" + name + "' (expected erm, resampling, groupdro or dfr)");
}

const char* stage_order_name(StageOrder s) {
  switch (s) {
    case StageOrder::Full: return "full";
    case StageOrder::Stage1Only: return "stage1";
    case StageOrder::Stage2Only: return "stage2";
    case StageOrder::Stage2Then1: return "stage2-then-1";
  }
  return "?";
}

StageOrder parse_stage_order(const std::string& name) {
  for (StageOrder s : {StageOrder::Full, StageOrder::Stage1Only, StageOrder::Stage2Only, StageOrder::Stage2Then1}) {
    if (name == stage_order_name(s)) return s;
  }
  throw InputError("unknown stage order '" + name + "' (expected full, stage1, stage2 or stage2-then-1)");
}

const char* synthetic_distribution_name(data::SyntheticDistribution d) {
  switch (d) {
    case data::SyntheticDistribution::Balanced: return "balanced";
    case data::SyntheticDistribution::Biased: return "biased";
    case data::SyntheticDistribution::BiasAgnostic: return "agnostic";
  }
  return "?";
}

data::SyntheticDistribution parse_synthetic_distribution(const std::string& name) {
  for (auto d : {data::SyntheticDistribution::Balanced, data::SyntheticDistribution::Biased,
                 data::SyntheticDistribution::BiasAgnostic}) {
    if (name == synthetic_distribution_name(d)) return d;
  }
  throw InputError("unknown synthetic distribution '" + name + "' (expected balanced, biased or agnostic)");
}

Device resolve_device(const std::string& name) {
  if (name == "auto") return default_device();
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") {
    if (!cuda_available()) throw InputError("device cuda requested, but " + cuda_unavailable_reason());
    return Device::cuda(0);
  }
  throw InputError("device must be auto, cpu or cuda, got '" + name + "'");
}

bool has_result(const std::string& run_dir) { return RunFolder(run_dir).complete(); }

std::vector<std::string> bias_ratio_warnings(const ExperimentConfig& config) {
  // The synthetic set is drawn too (indices only, cheap), so a manifest that lacks what the
  // configuration needs (e.g. the bias-agnostic pool) is refused before any folder is made.
  data::ProtocolConfig protocol;
  protocol.bias_ratio = config.bias_ratio;
  protocol.seed = config.seed;
  protocol.augmentation = config.augmentation;
  protocol.synthetic = config.synthetic;
  return data::make_experiment_splits(data::read_manifest(config.manifest), protocol).warnings;
}

ExperimentConfig with_data_hashes(const ExperimentConfig& config) {
  ExperimentConfig out = config;
  out.manifest_sha256 = sha256_file_hex(config.manifest);
  out.sidecar_sha256 = sha256_file_hex(data::sidecar_path(config.manifest).string());
  return out;
}

void check_same_data(const ExperimentConfig& recorded, const ExperimentConfig& current, const std::string& record_file,
                     const std::string& way_out) {
  auto changed = [&](const std::string& file, const std::string& was, const std::string& now) {
    if (was.empty() || was == now) return;  // older run folders recorded no hash
    throw InputError(detail::concat(record_file, ": was run on other data: ", file, " has changed since (sha256 ",
                                    was.substr(0, 12), "... then, ", now.substr(0, 12), "... now); ", way_out));
  };
  changed(current.manifest, recorded.manifest_sha256, current.manifest_sha256);
  changed(data::sidecar_path(current.manifest).string(), recorded.sidecar_sha256, current.sidecar_sha256);
}

bool completed_on_other_data(const std::string& run_dir, const ExperimentConfig& config) {
  if (!has_result(run_dir)) return false;
  const ExperimentConfig recorded = read_result(run_dir).config;
  const ExperimentConfig current = with_data_hashes(with_init_weights_hash(config));
  try {
    // An init file replaced under the same name counts as changed data, not another experiment.
    refuse_changed_init_weights(recorded, current, "");
  } catch (const InputError&) {
    ExperimentConfig same_init = recorded;
    same_init.init_sha256 = current.init_sha256;
    return same_experiment(same_init, current);
  }
  if (!same_experiment(recorded, current)) return false;
  try {
    check_same_data(recorded, current, "", "");
  } catch (const InputError&) {
    return true;
  }
  return false;
}

ExperimentResult read_result(const std::string& run_dir) {
  const std::string file = RunFolder(run_dir).path(kResultFile);
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file + ": no result (the run has not completed)");
  std::ostringstream text;
  text << in.rdbuf();
  return result_from_json(text.str(), file);
}

ExperimentResult run_experiment(const ExperimentConfig& config, const std::string& run_dir,
                                const ProgressCallback& progress) {
  return run_experiment_data_parallel(config, run_dir, progress, DataParallel{});
}

ExperimentResult run_experiment_data_parallel(const ExperimentConfig& requested, const std::string& run_dir,
                                             const ProgressCallback& progress, const DataParallel& parallel) {
  comm::Communicator* const communicator = parallel.communicator;
  // Data parallel: rank 0 writes the folder; the others train and evaluate alike, writing nothing.
  const bool writes = communicator == nullptr || communicator->rank() == 0;
  validate_config(requested);
  // From here on the configuration carries its data's and its init file's hashes: config.json, the
  // resume file, the checkpoint and result.json all record them.
  const ExperimentConfig config = with_data_hashes(with_init_weights_hash(requested));
  const RunFolder folder(run_dir);
  if (folder.complete()) {
    ExperimentResult done = read_result(run_dir);
    refuse_changed_init_weights(done.config, config, folder.path(kResultFile));
    if (!same_experiment(done.config, config)) {
      throw InputError(run_dir + ": holds a completed run of another configuration (see its " + kConfigFile +
                       "); choose another folder or delete it");
    }
    check_same_data(done.config, config, folder.path(kResultFile),
                    "rerun with --restart to train it again on the current data, or choose a new --out");
    return done;
  }
  const auto start = std::chrono::steady_clock::now();
  const Device device = resolve_device(config.device);
  const Precision precision = resolve_precision(config.precision, device);
  set_compute_threads(config.compute_threads);
  Settings numerics = with_precision(settings(), precision);
  numerics.deterministic = config.deterministic;
  SettingsScope settings_scope(numerics);

  // Everything that can fail on bad input fails here, before the folder is touched.
  const data::Manifest manifest = data::read_manifest(config.manifest);
  const data::GroupIndex groups(manifest.info);
  data::ProtocolConfig protocol;
  protocol.bias_ratio = config.bias_ratio;
  protocol.augmentation = config.augmentation;
  protocol.synthetic = config.synthetic;
  protocol.seed = config.seed;
  const data::ExperimentSplits splits = data::make_experiment_splits(manifest, protocol);
  const std::vector<StagePlan> stages = plan_stages(config, manifest, splits);
  check_validation_split(config, manifest, splits.val, groups);
  const int64_t image_size = config.image_size > 0 ? config.image_size : manifest.info.image_size;
  Rng init_rng(config.seed, kModelInitStream);
  std::unique_ptr<Classifier> model = make_model(config.model, manifest.info.num_classes(), init_rng, image_size);
  model->to(device);
  // The first stage starts from the pretrained weights (the head stays fresh unless keep_head);
  // later stages start from the stage before, as without them.
  if (!config.init_weights.empty()) load_init_weights(*model, config.init_weights, config.keep_head);

  // An unfinished run of this experiment goes on from its last complete epoch; anything else
  // starts over.
  std::optional<ResumeState> resume = read_resume_state(folder, config, stages);
  if (resume) model->load_state_dict(resume->model, folder.path(kResumeFile));  // checked before the folder changes
  if (communicator) communicator->barrier();  // every rank has read the resume file before rank 0 changes the folder
  if (writes) {
    if (resume) {
      folder.remove_temporary_files();
      folder.write_metrics(resume->metrics);  // lines of an epoch after the resume point go
    } else {
      folder.start_fresh();
    }
    folder.write_config(config);
  }

  CheckpointInfo checkpoint{model->architecture(), model->num_classes(), image_size,
                            {{"config", config_to_json(config)},
                             // read by the inference API (layers/inference.h) to name its predictions
                             {"class_names", nlohmann::json(manifest.info.class_names).dump()},
                             {"precision", precision_name(precision)},
                             {"engine", build_info_json()}}};
  auto save_best = [&](const Classifier& m, const std::string& stage, int64_t epoch, double val_wa) {
    CheckpointInfo info = checkpoint;
    info.extra["stage"] = stage;
    info.extra["epoch"] = std::to_string(epoch);
    info.extra["val_worst_group_accuracy"] = detail::concat(val_wa);
    if (writes) save_checkpoint(folder.path(kCheckpointFile), m.state_dict(), info);
  };

  data::LoaderConfig loader;
  loader.image_size = int(image_size);
  loader.workers = config.loader_workers;
  RunClock clock;
  for (const StagePlan& s : stages) clock.total_steps += stage_steps_per_epoch(s, config.batch_size) * s.epochs;
  const double seconds_before = resume ? resume->seconds : 0.0;
  if (resume) clock.steps_done = clock.steps_at_start = resume->steps_done;
  auto seconds_so_far = [&] {
    return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };

  // The resume point, rewritten after every epoch.
  size_t stage_index = 0;
  std::vector<int64_t> finished_best_epochs;  // of the stages before stage_index
  std::vector<EpochMetrics> history = resume ? resume->metrics : std::vector<EpochMetrics>{};
  std::string last_good = resume ? detail::concat(kResumeFile, " (", resume->stage_name, ", epoch ",
                                                  resume->stage.epochs_done, ")")
                                 : std::string();
  int64_t epochs_saved_here = 0;

  TrainingContext context;
  context.manifest = &manifest;
  context.groups = &groups;
  context.val = splits.val;
  context.device = device;
  context.loader = loader;
  context.batch_size = config.batch_size;
  context.weight_decay = config.weight_decay;
  context.groupdro_step_size = config.groupdro_step_size;
  context.groupdro_adjustment = config.groupdro_adjustment;
  context.progress = progress;
  context.on_epoch = [&](const EpochMetrics& m) {
    history.push_back(m);
    if (writes) folder.append_metrics(m);
  };
  context.on_new_best = [&](const Classifier& m, const EpochMetrics& e) {
    save_best(m, e.stage, e.epoch, e.val_worst_group_accuracy);
  };
  context.on_epoch_complete = [&](const Classifier& m, const StageProgress& p) {
    ResumeState state;
    state.config_json = config_to_json(config);
    state.stage_index = int64_t(stage_index);
    state.stage_name = stages[stage_index].name;
    state.model = m.state_dict();
    state.stage = p;
    state.finished_best_epochs = finished_best_epochs;
    state.metrics = history;
    state.steps_done = clock.steps_done;
    state.seconds = seconds_so_far();
    if (writes) save_resume_state(folder.path(kResumeFile), state);
    // No rank starts the next epoch before the resume point is on disk: whichever rank is killed
    // later, a rerun finds this epoch saved.
    if (communicator) communicator->barrier();
    last_good = detail::concat(kResumeFile, " (", state.stage_name, ", epoch ", p.epochs_done, ")");
    if (fault::active() && fault::plan().kill_after_epoch == ++epochs_saved_here) {
      fault::kill_process(detail::concat("kill-after-epoch=", epochs_saved_here, ", after writing ", last_good));
    }
  };
  context.clock = &clock;
  context.communicator = communicator;
  context.sync_batch_norm = parallel.sync_batch_norm;

  // A failure while training leaves the folder resumable; the message says from where.
  auto resume_note = [&] {
    return last_good.empty()
               ? std::string(" (no epoch had completed: a rerun starts over)")
               : " (the run folder keeps the last good state, " + last_good + ", and " + kCheckpointFile +
                     "; the same command resumes from there)";
  };

  ExperimentResult result;
  result.config = config;
  result.train_majority_share = splits.train_bias_ratio.achieved;
  result.val_majority_share = splits.val_bias_ratio.achieved;
  result.warnings = splits.warnings;
  try {
    for (stage_index = 0; stage_index < stages.size(); ++stage_index) {
      const StagePlan& plan = stages[stage_index];
      StageOutcome outcome;
      if (resume && int64_t(stage_index) < resume->stage_index) {
        outcome.best_epoch = resume->finished_best_epochs[stage_index];  // trained before the interruption
      } else {
        const bool resumed_here = resume && int64_t(stage_index) == resume->stage_index;
        outcome = train_stage(*model, plan, context, resumed_here ? &resume->stage : nullptr);
        // The next stage (and the final evaluation) starts from this stage's selected epoch.
        model->load_state_dict(outcome.best_state, plan.name + " (best epoch)");
      }
      finished_best_epochs.push_back(outcome.best_epoch);
      if (stage_index + 1 < stages.size()) {
        result.stage1_best_epoch = outcome.best_epoch;
      } else {
        result.best_epoch = outcome.best_epoch;
        result.val = outcome.best_val;
      }
    }
  } catch (const NumericalError& e) {
    throw NumericalError(folder.dir() + ": " + e.what() + resume_note());
  } catch (const OutOfMemoryError& e) {
    throw OutOfMemoryError(folder.dir() + ": " + e.what() + resume_note(), e.requested_bytes, e.free_bytes);
  }

  const EvalOptions eval{device, loader, config.batch_size};
  std::string last_stage = stages.back().name;
  if (config.method == TrainingMethod::DFR) {
    result.backbone_val = result.val;  // the ERM backbone's own selection numbers
    const DfrResult dfr =
        refit_head_with_dfr(*model, manifest, splits.val, groups, eval, config.seed, config.dfr_refits, result.val);
    result.dfr_c = dfr.best_c;
    result.dfr_tuning_worst_group_accuracy = dfr.tuning_worst_group_accuracy;
    result.dfr_refits = dfr.num_retrains;
    last_stage += " + dfr head";
  }
  result.test = evaluate(*model, manifest, splits.test, groups, eval);
  result.test_synthetic = evaluate(*model, manifest, splits.test_synthetic, groups, eval);
  // Does the trained model's feature space keep real and synthetic apart? (the paper's Figure 5)
  if (!data::select_samples(manifest, data::Split::Test, data::Source::Synthetic).empty() ||
      !data::select_samples(manifest, data::Split::Val, data::Source::Synthetic).empty()) {
    FeatureProbeOptions probe;
    probe.seed = config.seed;
    probe.max_per_source = 1000;  // enough for a stable accuracy, bounded cost on large sets
    try {
      result.feature_probe_accuracy = probe_features(*model, manifest, eval, probe).accuracy;
    } catch (const InputError&) {
      // Too few held-out images of a source: the run's numbers stand without the probe.
    }
  }
  // The checkpoint is exactly the evaluated model (the DFR head included).
  save_best(*model, last_stage, result.best_epoch, result.val.worst_group_accuracy);

  result.seconds = seconds_so_far();
  result.device = describe_device(device);
  result.precision = precision_name(precision);
  result.compute_threads = compute_threads();
  if (!writes) return result;
  folder.write_groups(result, manifest.info);
  folder.write_result(result);  // its presence marks the run complete
  std::error_code ignored;
  std::filesystem::remove(folder.path(kResumeFile), ignored);  // the completed run no longer needs it
  return result;
}

}  // namespace ffr
