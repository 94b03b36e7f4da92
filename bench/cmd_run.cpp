// `ffr-bench run`: one experiment configuration over several seeds, each into <out>/seed-<s>/,
// then the WA/BA table (mean +- std over seeds). Flags are parsed into ffr::ExperimentConfig here;
// ffr::run_experiment does the work. A seed whose folder already holds a completed run of the same
// configuration is not rerun, and an unfinished one goes on from its last complete epoch
// (ffr/resume_state.h), so an interrupted command can simply be started again; --restart throws
// unfinished runs away instead.
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "bench/interrupt.h"
#include "bench/outputs.h"
#include "bench/progress.h"
#include "engine/atomic_file.h"
#include "engine/build_info.h"
#include "engine/comm/communicator.h"
#include "engine/error.h"
#include "engine/profiler_window.h"
#include "ffr/experiment.h"
#include "ffr/run_folder.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

namespace ffr::bench {
namespace {

struct RunOptions {
  ExperimentConfig config;
  std::string augmentation = "none", method = "erm", stages = "full", synthetic = "balanced", freeze_bn = "false";
  std::vector<uint64_t> seeds{0};
  std::string out;
  bool restart = false;
  bool distributed = false;  // one rank of mpirun/srun (ffr/data_parallel.h)
  bool sync_bn = false;      // with --distributed: BN statistics over the global batch
  std::string profile_steps;  // "A:B": a cudaProfilerStart/Stop window (engine/profiler_window.h)
};

struct MeanAndStd {
  double mean = 0.0, std = 0.0;
};

// Sample standard deviation (n - 1), as the paper's +-; 0 for one seed.
MeanAndStd mean_and_std(const std::vector<double>& v) {
  MeanAndStd m;
  if (v.empty()) return m;
  for (double x : v) m.mean += x;
  m.mean /= double(v.size());
  if (v.size() < 2) return m;
  double sq = 0.0;
  for (double x : v) sq += (x - m.mean) * (x - m.mean);
  m.std = std::sqrt(sq / double(v.size() - 1));
  return m;
}

std::string percent(const MeanAndStd& m) {
  char text[48];
  std::snprintf(text, sizeof text, "%5.1f +- %4.1f", 100.0 * m.mean, 100.0 * m.std);
  return text;
}

void print_table(const std::vector<uint64_t>& seeds, const std::vector<ExperimentResult>& results) {
  const bool synthetic = !results.empty() && !results.front().test_synthetic.groups.empty();
  std::printf("\n%-6s %6s %8s %8s %8s %8s", "seed", "epoch", "val WA", "val BA", "test WA", "test BA");
  if (synthetic) std::printf(" %8s %8s", "synth WA", "synth BA");
  std::printf(" %9s\n", "seconds");
  std::vector<double> val_wa, val_ba, wa, ba, swa, sba;
  for (size_t i = 0; i < results.size(); ++i) {
    const ExperimentResult& r = results[i];
    std::printf("%-6llu %6lld %8.1f %8.1f %8.1f %8.1f", static_cast<unsigned long long>(seeds[i]),
                static_cast<long long>(r.best_epoch), 100 * r.val.worst_group_accuracy,
                100 * r.val.balanced_accuracy, 100 * r.test.worst_group_accuracy, 100 * r.test.balanced_accuracy);
    if (synthetic) {
      std::printf(" %8.1f %8.1f", 100 * r.test_synthetic.worst_group_accuracy,
                  100 * r.test_synthetic.balanced_accuracy);
    }
    std::printf(" %9.1f\n", r.seconds);
    val_wa.push_back(r.val.worst_group_accuracy);
    val_ba.push_back(r.val.balanced_accuracy);
    wa.push_back(r.test.worst_group_accuracy);
    ba.push_back(r.test.balanced_accuracy);
    swa.push_back(r.test_synthetic.worst_group_accuracy);
    sba.push_back(r.test_synthetic.balanced_accuracy);
  }
  std::printf("\nover %zu seed(s), mean +- std, %%:\n", results.size());
  std::printf("  test WA %s   test BA %s\n", percent(mean_and_std(wa)).c_str(), percent(mean_and_std(ba)).c_str());
  std::printf("  val  WA %s   val  BA %s\n", percent(mean_and_std(val_wa)).c_str(),
              percent(mean_and_std(val_ba)).c_str());
  if (synthetic) {
    std::printf("  held-out synthetic test WA %s   BA %s\n", percent(mean_and_std(swa)).c_str(),
                percent(mean_and_std(sba)).c_str());
  }
}

// summary.json and summary.md beside the seed folders: the settings, one row per seed, and the
// mean +- std over seeds (sample std, as the table printed), with the engine's build.
void write_summary(const RunOptions& o, const std::vector<ExperimentResult>& results) {
  const ExperimentConfig& c = o.config;
  const bool ffr = c.augmentation == data::Augmentation::FFR;
  nlohmann::ordered_json settings = {
      {"manifest", c.manifest},
      {"augmentation", data::augmentation_name(c.augmentation)},
      {"method", method_name(c.method)},
      {"bias_ratio", c.bias_ratio},
      {"model", c.model},
      {"image_size", c.image_size},
      {"batch_size", c.batch_size},
      {"epochs", c.epochs},
      {"learning_rate", c.learning_rate},
      {"weight_decay", c.weight_decay},
      {"max_train_samples", c.max_train_samples},
      {"init_weights", c.init_weights.empty() ? "random (seeded)" : c.init_weights},
      {"device", results.empty() ? c.device : results.front().device},
      {"precision", results.empty() ? c.precision : results.front().precision},  // as run
      {"deterministic", c.deterministic},
      {"seeds", o.seeds}};
  if (!c.init_weights.empty()) {
    settings["init_sha256"] = results.empty() ? c.init_sha256 : results.front().config.init_sha256;
    settings["keep_head"] = c.keep_head;
  }
  if (ffr) {
    settings["stage1_epochs"] = c.stage1_epochs;
    settings["stage1_learning_rate"] = c.stage1_learning_rate;
    settings["stages"] = stage_order_name(c.stages);
    settings["freeze_batch_norm"] = c.freeze_batch_norm;
    settings["freeze_batch_norm_affine"] = c.freeze_batch_norm_affine;
  }
  const bool synthetic = !results.empty() && !results.front().test_synthetic.groups.empty();
  struct Column {
    const char* key;
    std::vector<double> values;
  };
  std::vector<Column> columns{{"val_worst_group_accuracy", {}}, {"val_balanced_accuracy", {}},
                              {"test_worst_group_accuracy", {}}, {"test_balanced_accuracy", {}}};
  if (synthetic) {
    columns.push_back({"test_synthetic_worst_group_accuracy", {}});
    columns.push_back({"test_synthetic_balanced_accuracy", {}});
  }
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const ExperimentResult& r = results[i];
    const double values[] = {r.val.worst_group_accuracy, r.val.balanced_accuracy, r.test.worst_group_accuracy,
                             r.test.balanced_accuracy, r.test_synthetic.worst_group_accuracy,
                             r.test_synthetic.balanced_accuracy};
    nlohmann::ordered_json row = {{"seed", o.seeds[i]}, {"folder", "seed-" + std::to_string(o.seeds[i])},
                                  {"best_epoch", r.best_epoch}};
    for (size_t k = 0; k < columns.size(); ++k) {
      columns[k].values.push_back(values[k]);
      row[columns[k].key] = values[k];
    }
    runs.push_back(row);
  }
  nlohmann::ordered_json summary = nlohmann::ordered_json::object();
  for (const Column& column : columns) {
    const MeanAndStd m = mean_and_std(column.values);
    summary[column.key] = {{"mean", m.mean}, {"std", m.std}};
  }
  const nlohmann::ordered_json doc = {{"engine", nlohmann::ordered_json::parse(build_info_json())},
                                      {"settings", settings},
                                      {"seeds", results.size()},
                                      {"std", "sample standard deviation over seeds (n - 1); 0 for one seed"},
                                      {"mean_and_std", summary},
                                      {"runs", runs}};
  const std::filesystem::path dir(o.out);
  write_text_atomically((dir / "summary.json").string(), doc.dump(2) + "\n");

  std::ostringstream md;
  md << "# " << data::augmentation_name(c.augmentation) << " + " << method_name(c.method) << " at bias ratio "
     << c.bias_ratio << "\n\n## Settings\n\n";
  for (const auto& [key, value] : settings.items()) md << "- " << key << ": " << value.dump() << "\n";
  md << "\n## Mean +- std over " << results.size() << " seed(s), %\n\n| metric | mean | std |\n|---|---|---|\n";
  char line[160];
  for (const Column& column : columns) {
    const MeanAndStd m = mean_and_std(column.values);
    std::snprintf(line, sizeof line, "| %s | %.1f | %.1f |\n", column.key, 100 * m.mean, 100 * m.std);
    md << line;
  }
  md << "\n## Seeds\n\n| seed | best epoch | val WA | val BA | test WA | test BA |\n|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const ExperimentResult& r = results[i];
    std::snprintf(line, sizeof line, "| %llu | %lld | %.1f | %.1f | %.1f | %.1f |\n",
                  static_cast<unsigned long long>(o.seeds[i]), static_cast<long long>(r.best_epoch),
                  100 * r.val.worst_group_accuracy, 100 * r.val.balanced_accuracy, 100 * r.test.worst_group_accuracy,
                  100 * r.test.balanced_accuracy);
    md << line;
  }
  md << "\n## Engine\n\n";
  for (const auto& [key, value] : build_info_fields()) md << "- " << key << ": " << value << "\n";
  write_text_atomically((dir / "summary.md").string(), md.str());
}

// Flags that mean nothing for the chosen augmentation or method are refused, not ignored.
void check_applicable(const CLI::App& sub, const ExperimentConfig& c) {
  const bool ffr = c.augmentation == data::Augmentation::FFR;
  auto refuse = [&](const char* flag, const std::string& why) {
    if (sub.count(flag) > 0) throw UsageError(std::string(flag) + " " + why);
  };
  if (!ffr) {
    const std::string why = "applies to --aug ffr only (got --aug " + std::string(data::augmentation_name(c.augmentation)) + ")";
    refuse("--stages", why);
    refuse("--stage1-lr", why);
    refuse("--stage1-epochs", why);
    refuse("--freeze-bn", why);
  }
  if (c.augmentation == data::Augmentation::None) {
    refuse("--synthetic", "applies to --aug usb, asb or ffr only (--aug none uses no synthetic data)");
  }
  if (c.method != TrainingMethod::GroupDRO) {
    const std::string why = "applies to --method groupdro only (got --method " + std::string(method_name(c.method)) + ")";
    refuse("--groupdro-eta", why);
    refuse("--groupdro-c", why);
  }
}

void run(const CLI::App& sub, RunOptions& o) {
  ExperimentConfig& c = o.config;
  // CLI11 has checked the names; the parsers map them (and would name a bad one).
  c.augmentation = data::parse_augmentation(o.augmentation);
  c.method = parse_method(o.method);
  c.stages = parse_stage_order(o.stages);
  c.synthetic = parse_synthetic_distribution(o.synthetic);
  c.freeze_batch_norm = o.freeze_bn != "false";
  c.freeze_batch_norm_affine = o.freeze_bn == "affine";
  check_applicable(sub, c);
  // --epochs is the fine-tuning (or only) stage; FFR's stage 1 trains as long unless
  // --stage1-epochs says otherwise (the same rule as grid).
  if (sub.count("--stage1-epochs") == 0) c.stage1_epochs = c.epochs;
  for (size_t i = 0; i < o.seeds.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (o.seeds[i] == o.seeds[j]) throw UsageError("--seeds: " + std::to_string(o.seeds[i]) + " is listed twice");
    }
  }
  // A ratio the data cannot express is refused here, before any seed trains.
  for (const std::string& warning : bias_ratio_warnings(c)) {
    std::fprintf(stderr, "ffr-bench: warning: %s\n", warning.c_str());
  }
  // Training steps are counted over the whole command (every seed), from its progress reports:
  // one per step, plus one closing each epoch.
  ProfilerWindow profiler(o.profile_steps.empty() ? ProfileSteps{} : parse_profile_steps(o.profile_steps),
                          o.profile_steps.empty() ? Device::cpu() : resolve_device(c.device));
  if (!o.profile_steps.empty() && !profiler.note().empty()) std::printf("note: %s\n", profiler.note().c_str());
  int64_t steps_done = 0;
  auto count_steps = [&](ProgressCallback print) -> ProgressCallback {
    return [&profiler, &steps_done, print](const Progress& p) {
      if (!p.epoch_done) profiler.step_done(++steps_done);
      print(p);
    };
  };
  // --distributed: this process is one rank; rank 0 prints and writes, the others only train.
  std::unique_ptr<comm::Communicator> ranks;
  if (o.distributed) {
    const bool cuda = resolve_device(c.device).is_cuda();
    const char* local_rank = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!local_rank) local_rank = std::getenv("SLURM_LOCALID");
    try {
      ranks = comm::make_communicator(cuda ? "nccl" : "mpi", local_rank ? std::atoi(local_rank) : -1);
    } catch (const InputError& e) {
      throw UsageError(std::string("--distributed: ") + e.what());
    }
    if (ranks->rank() != 0 && !std::freopen("/dev/null", "w", stdout)) throw Error("--distributed: cannot silence rank output");
    std::printf("data parallel: %d ranks (%s), global batch %lld\n", ranks->size(), ranks->backend().c_str(),
                static_cast<long long>(c.batch_size));
  }
  if (o.sync_bn && !o.distributed) throw UsageError("--sync-bn: needs --distributed");
  const bool writes = !ranks || ranks->rank() == 0;
  profiler.begin();
  if (writes) ensure_writable_folder("--out", o.out);
  install_interrupt_handler();
  std::vector<ExperimentResult> results;
  for (uint64_t seed : o.seeds) {
    c.seed = seed;
    const std::string dir = (std::filesystem::path(o.out) / ("seed-" + std::to_string(seed))).string();
    if (writes && o.restart && std::filesystem::exists(dir) && (!has_result(dir) || completed_on_other_data(dir, c))) {
      RunFolder(dir).start_fresh();
    }
    if (ranks) ranks->barrier();  // no rank looks at the folder before rank 0 has cleaned it
    const bool done = has_result(dir);
    if (!done) {
      const std::string from = resume_point(dir);
      if (!from.empty()) {
        std::printf("seed %llu: resuming the unfinished run in %s (%s)\n", static_cast<unsigned long long>(seed),
                    dir.c_str(), from.c_str());
        std::fflush(stdout);
      }
    }
    ProgressCallback printer = progress_printer("seed " + std::to_string(seed));
    results.push_back(run_experiment_data_parallel(c, dir, count_steps([&printer](const Progress& p) {
      printer(p);
      stop_if_interrupted(p);
    }), DataParallel{ranks.get(), o.sync_bn}));
    if (!done) end_progress_line();
    std::printf("seed %llu:%s test WA %.1f BA %.1f (%s)\n", static_cast<unsigned long long>(seed),
                done ? " already complete," : "", 100 * results.back().test.worst_group_accuracy,
                100 * results.back().test.balanced_accuracy, dir.c_str());
    std::fflush(stdout);
  }
  char stage1[96] = "";
  if (c.augmentation == data::Augmentation::FFR) {
    std::snprintf(stage1, sizeof stage1, "; stage 1: lr %g, %lld epoch(s)", c.stage1_learning_rate,
                  static_cast<long long>(c.stage1_epochs));
  }
  std::printf("\n%s + %s at bias ratio %g, model %s, lr %g, %lld epoch(s)%s, on %s\n",
              data::augmentation_name(c.augmentation), method_name(c.method), c.bias_ratio, c.model.c_str(),
              c.learning_rate, static_cast<long long>(c.epochs), stage1,
              results.empty() ? "?" : results.front().device.c_str());
  print_table(o.seeds, results);
  if (!writes) return;
  write_summary(o, results);
  std::printf("\nsummary: %s, %s\n", (std::filesystem::path(o.out) / "summary.md").string().c_str(),
              (std::filesystem::path(o.out) / "summary.json").string().c_str());
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<RunOptions>();
  ExperimentConfig& c = o->config;
  sub.add_option("--manifest", c.manifest, "data set manifest (CSV with a JSON sidecar)")
      ->required()->check(CLI::ExistingFile);
  sub.add_option("--out", o->out, "output folder: one run folder per seed, <out>/seed-<s>/")->required();
  sub.add_option("--aug", o->augmentation, "use of synthetic data")
      ->check(CLI::IsMember({"none", "usb", "asb", "ffr"}))->capture_default_str();
  sub.add_option("--method", o->method, "training method")
      ->check(CLI::IsMember({"erm", "resampling", "groupdro", "dfr"}))->capture_default_str();
  sub.add_option("--ratio", c.bias_ratio, "bias ratio r of the real train and val splits")
      ->check(open_unit_interval())->capture_default_str();
  sub.add_option("--seeds", o->seeds, "seeds of the runs, comma-separated, one run folder each (a run's seed "
                 "sets subsampling, initialisation and batch order)")->delimiter(',')->capture_default_str();
  sub.add_option("--model", c.model, "backbone (ffr-bench models)")->check(CLI::IsMember(model_names()))
      ->capture_default_str();
  sub.add_option("--image-size", c.image_size, "input side in pixels (0: the manifest's)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--lr", c.learning_rate, "learning rate of the fine-tuning (ffr stage 2) or only stage")
      ->check(positive())->capture_default_str();
  sub.add_option("--epochs", c.epochs,
                 "epochs of the fine-tuning (ffr stage 2) or only stage; also ffr stage 1 unless --stage1-epochs")
      ->check(positive())->capture_default_str();
  sub.add_option("--stage1-lr", c.stage1_learning_rate, "ffr stage 1 learning rate (--aug ffr only)")
      ->check(positive())->capture_default_str();
  sub.add_option("--stage1-epochs", c.stage1_epochs, "ffr stage 1 epochs (--aug ffr only) [default: --epochs]")
      ->check(positive());
  sub.add_option("--stages", o->stages, "ffr stage order (the paper's Table 1)")
      ->check(CLI::IsMember({"full", "stage1", "stage2", "stage2-then-1"}))->capture_default_str();
  sub.add_option("--synthetic", o->synthetic, "shape of the synthetic set (Tables 2 and 5)")
      ->check(CLI::IsMember({"balanced", "biased", "agnostic"}))->capture_default_str();
  sub.add_option("--freeze-bn", o->freeze_bn,
                 "ffr stage 2: true freezes batch-norm statistics (BN in eval mode, scale/shift still "
                 "trained: the authors' code); affine also freezes scale/shift (--aug ffr only)")
      ->check(CLI::IsMember({"false", "true", "affine"}))->capture_default_str();
  sub.add_option("--weight-decay", c.weight_decay, "Adam's coupled L2")->check(non_negative())
      ->capture_default_str();
  sub.add_option("--batch-size", c.batch_size, "batch size")->check(positive())->capture_default_str();
  sub.add_option("--groupdro-eta", c.groupdro_step_size, "GroupDRO step size eta (--method groupdro only)")->check(non_negative())
      ->capture_default_str();
  sub.add_option("--groupdro-c", c.groupdro_adjustment, "GroupDRO generalisation adjustment C (--method groupdro only)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--device", c.device, "where to train")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  sub.add_option("--precision", c.precision,
                 "matmul/conv precision: fp32, tf32 (tensor cores; fp32 on the CPU) or bf16 (mixed precision); "
                 "auto: tf32 on CUDA, fp32 on the CPU")
      ->check(CLI::IsMember({"auto", "fp32", "tf32", "bf16"}))->capture_default_str();
  sub.add_flag("--deterministic", c.deterministic, "bit-identical results run to run (fixed-order reductions)");
  sub.add_option("--workers", c.loader_workers, "image decoding threads")->check(positive())
      ->capture_default_str();
  sub.add_option("--threads", c.compute_threads, "CPU compute threads (0: the machine's cores)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--max-train-samples", c.max_train_samples,
                 "cap on each training list, kept in group proportion (0: no cap)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--profile-steps", o->profile_steps,
                 "A:B: cudaProfilerStart before training step A, cudaProfilerStop after step B (for nsys "
                 "--capture-range=cudaProfilerApi / ncu --profile-from-start off; no-op on the CPU)");
  CLI::Option* init =
      sub.add_option("--init", c.init_weights,
                     "start from these weights (safetensors, torchvision/timm names: tools/convert_weights.py); "
                     "the classifier head is re-initialised for the data set's classes")
          ->check(CLI::ExistingFile);
  sub.add_flag("--keep-head", c.keep_head, "with --init: keep the file's classifier head (same class count)")
      ->needs(init);
  sub.add_flag("--restart", o->restart,
               "start unfinished runs over instead of resuming them from their last complete epoch, and "
               "completed ones whose data (manifest or sidecar) has changed since");
  sub.add_flag("--distributed", o->distributed,
               "data-parallel training over the ranks of mpirun/srun (MPI build: -DFFR_ENABLE_MPI=ON): each rank "
               "trains on its slice of every global batch of --batch-size; rank 0 writes the folder");
  sub.add_flag("--sync-bn", o->sync_bn,
               "with --distributed: batch-norm statistics over the whole global batch (PyTorch's SyncBatchNorm) "
               "rather than each rank's slice (DDP's default)");
  sub.callback([&sub, o] { run(sub, *o); });
}

const bool registered = register_command(
    {"run", "run one experiment configuration over seeds and print WA/BA (mean +- std)", setup});

}  // namespace
}  // namespace ffr::bench
