// `ffr-bench grid`: the paper's experiments (presets) over data sets, bias ratios, seeds and a
// learning-rate grid. Flags (over an optional grid file) become ffr::GridOptions here; ffr/grid
// runs the runs (resumable, shardable) and ffr/report writes report.md, results.csv and plots.
#include "bench/command.h"
#include "bench/grid_slurm.h"
#include "bench/grid_workers.h"
#include "bench/interrupt.h"
#include "bench/outputs.h"
#include "bench/progress.h"
#include "engine/error.h"
#include "engine/sha256.h"
#include "ffr/experiment.h"
#include "ffr/grid.h"
#include "ffr/grid_workers.h"
#include "ffr/report.h"
#include "layers/model_zoo.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

namespace ffr::bench {
namespace {

struct GridCommandOptions {
  std::string config;  // grid file
  std::vector<std::string> presets, manifests;
  std::vector<double> ratios, learning_rates, stage1_learning_rates;
  std::string lr_grid;                       // "paper" or "table6"
  std::vector<std::string> dataset_ratios;   // NAME=r1,r2,...
  std::vector<int> severities;
  std::vector<uint64_t> seeds;
  std::vector<std::string> freeze_bn;
  std::string vit_model;
  ExperimentConfig base;  // only the fields whose flags were given are copied over
  std::string out;
  std::string shard = "0/1";
  bool dry_run = false;
  // Several worker processes on this machine (bench/grid_workers.h); --grid-worker marks one.
  int processes = 0;
  std::string devices;
  int workers_per_device = 1;
  bool grid_worker = false;
  SlurmOptions slurm;  // --slurm, --slurm-opts, --shards, --submit (bench/grid_slurm.h)
};

// CLI11's PositiveNumber prints its range as 300 digits; this one says what it wants.
CLI::Validator number_above_zero(bool zero_allowed = false) {
  return CLI::Validator(
      [zero_allowed](std::string& value) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(value, &used);
          if (used == value.size() && (v > 0.0 || (zero_allowed && v == 0.0))) return "";
        } catch (const std::exception&) {
        }
        return (zero_allowed ? "expected a number >= 0, got " : "expected a number > 0, got ") + value;
      },
      zero_allowed ? ">= 0" : "> 0");
}

// An option given on the command line (CLI11 counts them).
bool given(const CLI::App& sub, const char* name) { return sub.count(name) > 0; }

template <typename T>
void require_unique(const char* flag, std::vector<T> values) {
  std::sort(values.begin(), values.end());
  const auto at = std::adjacent_find(values.begin(), values.end());
  if (at != values.end()) throw UsageError(detail::concat(flag, ": ", *at, " is listed twice"));
}

std::vector<bool> parse_freeze_choices(const std::vector<std::string>& texts) {
  std::vector<bool> out;
  for (const std::string& t : texts) {
    if (t == "false" || t == "no" || t == "0") out.push_back(false);
    else if (t == "true" || t == "yes" || t == "1") out.push_back(true);
    else throw UsageError("--freeze-bn: expected false and/or true (e.g. false,true), got '" + t + "'");
  }
  require_unique("--freeze-bn", std::vector<int>(out.begin(), out.end()));
  return out;
}

GridOptions grid_options(const CLI::App& sub, const GridCommandOptions& o) {
  GridOptions g = o.config.empty() ? GridOptions{} : read_grid_options(o.config);
  if (given(sub, "--preset")) g.presets = o.presets;
  if (given(sub, "--manifest")) g.manifests = o.manifests;
  if (given(sub, "--ratios")) g.bias_ratios = o.ratios;
  if (given(sub, "--severities")) g.severities = o.severities;
  if (given(sub, "--seeds")) g.seeds = o.seeds;
  if (given(sub, "--lr")) g.learning_rates = o.learning_rates;
  if (given(sub, "--lr-grid")) g.ffr_learning_rates = o.lr_grid == "table6" ? table6_ffr_learning_rates() : std::vector<double>{};
  if (given(sub, "--stage1-lr")) {
    g.stage1_learning_rates = o.stage1_learning_rates;  // one value: no search
    if (o.stage1_learning_rates.size() == 1) g.base.stage1_learning_rate = o.stage1_learning_rates.front();
  }
  for (const std::string& entry : o.dataset_ratios) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      throw UsageError("--dataset-ratios: expected NAME=r1,r2,... (e.g. spuco=0.95,0.97,0.99,0.999), got '" + entry + "'");
    }
    std::vector<double> ratios;
    std::stringstream list(entry.substr(eq + 1));
    for (std::string item; std::getline(list, item, ',');) {
      size_t used = 0;
      double r = 0.0;
      try {
        r = std::stod(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != item.size() || !(r > 0.0 && r < 1.0)) {
        throw UsageError("--dataset-ratios: '" + item + "' in '" + entry + "' is not a ratio in (0, 1)");
      }
      ratios.push_back(r);
    }
    require_unique("--dataset-ratios", ratios);
    g.bias_ratios_by_dataset[entry.substr(0, eq)] = ratios;
  }
  if (given(sub, "--freeze-bn")) g.freeze_batch_norm = parse_freeze_choices(o.freeze_bn);
  if (given(sub, "--vit-model")) g.vit_model = o.vit_model;

  ExperimentConfig& b = g.base;
  if (given(sub, "--model")) b.model = o.base.model;
  if (given(sub, "--epochs")) {
    b.epochs = o.base.epochs;
    if (!given(sub, "--stage1-epochs")) b.stage1_epochs = o.base.epochs;
  }
  if (given(sub, "--stage1-epochs")) b.stage1_epochs = o.base.stage1_epochs;
  if (given(sub, "--image-size")) b.image_size = o.base.image_size;
  if (given(sub, "--batch-size")) b.batch_size = o.base.batch_size;
  if (given(sub, "--weight-decay")) b.weight_decay = o.base.weight_decay;
  if (given(sub, "--max-train-samples")) b.max_train_samples = o.base.max_train_samples;
  if (given(sub, "--device")) b.device = o.base.device;
  if (given(sub, "--precision")) b.precision = o.base.precision;
  if (given(sub, "--workers")) b.loader_workers = o.base.loader_workers;
  if (given(sub, "--threads")) b.compute_threads = o.base.compute_threads;
  if (given(sub, "--deterministic")) b.deterministic = o.base.deterministic;
  if (given(sub, "--init")) b.init_weights = o.base.init_weights;
  if (given(sub, "--keep-head")) b.keep_head = o.base.keep_head;
  if (given(sub, "--freeze-bn-affine")) b.freeze_batch_norm_affine = o.base.freeze_batch_norm_affine;

  if (g.manifests.empty()) throw UsageError("--manifest: required (or \"manifests\" in --config)");
  bool pattern = false, plain = false;
  for (const std::string& m : g.manifests) {
    const bool is_pattern = m.find("{severity}") != std::string::npos;
    if (!is_pattern && !std::filesystem::is_regular_file(m)) throw UsageError("--manifest: no such file: " + m);
    (is_pattern ? pattern : plain) = true;
  }
  // make_grid says the same in the grid file's words; here the flag is named.
  const bool table4 = std::count(g.presets.begin(), g.presets.end(), "table4") > 0;
  if (table4 && !pattern) {
    throw UsageError("--manifest: table4 needs a pattern with {severity}, one manifest per severity "
                     "(e.g. --manifest 'data/sev{severity}/manifest.csv')");
  }
  if (!plain && g.presets.size() > size_t(table4)) {
    throw UsageError("--manifest: presets other than table4 need a manifest without {severity}");
  }
  return g;
}

// Progress on the terminal: a line per run, the trainer's own line inside it; runs found complete
// are counted and reported once, not one line each.
// Before each run after the first one done here, the whole grid's ETA: this process's mean time
// per run times the runs left (runs read back from earlier calls take no time).
GridProgressCallback grid_printer(const std::string& out) {
  using Clock = std::chrono::steady_clock;
  auto resumed = std::make_shared<int64_t>(0);
  auto inner = std::make_shared<ProgressCallback>();
  auto ran_here = std::make_shared<int64_t>(0);
  auto seconds_here = std::make_shared<double>(0.0);
  auto run_start = std::make_shared<Clock::time_point>();
  return [=](const GridProgress& p) {
    auto flush_resumed = [&] {
      if (*resumed == 0) return;
      std::printf("(%lld runs already complete, read back)\n", static_cast<long long>(*resumed));
      *resumed = 0;
    };
    switch (p.event) {
      case GridProgress::Event::Resumed:
        ++*resumed;
        if (p.index == p.total) flush_resumed();
        break;
      case GridProgress::Event::Starting:
        flush_resumed();
        if (*ran_here > 0) {
          const double left = (*seconds_here / double(*ran_here)) * double(p.total - p.index + 1);
          std::printf("[%lld/%lld] %s (grid ETA %s)\n", static_cast<long long>(p.index),
                      static_cast<long long>(p.total), p.run->name.c_str(), format_duration(left).c_str());
        } else {
          std::printf("[%lld/%lld] %s\n", static_cast<long long>(p.index), static_cast<long long>(p.total),
                      p.run->name.c_str());
        }
        std::fflush(stdout);
        *inner = progress_printer(detail::concat("  ", p.index, "/", p.total));
        *run_start = Clock::now();
        if (const std::string from = resume_point(run_dir(out, *p.run)); !from.empty()) {
          std::printf("  resuming the unfinished run (%s)\n", from.c_str());
          std::fflush(stdout);
        }
        break;
      case GridProgress::Event::Running:
        (*inner)(*p.experiment);
        stop_if_interrupted(*p.experiment);
        break;
      case GridProgress::Event::Finished:
        ++*ran_here;
        *seconds_here += std::chrono::duration<double>(Clock::now() - *run_start).count();
        end_progress_line();
        std::printf("[%lld/%lld] done in %s: test WA %.1f%%, BA %.1f%% (val WA %.1f%%)\n",
                    static_cast<long long>(p.index), static_cast<long long>(p.total),
                    format_duration(p.result->seconds).c_str(), 100 * p.result->test.worst_group_accuracy,
                    100 * p.result->test.balanced_accuracy, 100 * p.result->val.worst_group_accuracy);
        std::fflush(stdout);
        break;
    }
  };
}

void run(const CLI::App& sub, const GridCommandOptions& o) {
  const Shard shard = [&] {
    try {
      return parse_shard(o.shard);
    } catch (const InputError& e) {
      throw UsageError(std::string("--shard: ") + e.what());
    }
  }();
  Grid grid = make_grid(grid_options(sub, o));
  std::map<std::string, std::string> init_digests;  // --init (or a grid file's init_weights), hashed once
  for (GridCell& cell : grid.cells) {  // table4's patterns, expanded
    if (!std::filesystem::is_regular_file(cell.config.manifest)) {
      throw InputError("--manifest: no such file: " + cell.config.manifest);
    }
    // The run names and each run's config.json carry the init file's content, not just its name.
    const std::string& init = cell.config.init_weights;
    if (!init.empty() && !init_digests.count(init)) init_digests[init] = sha256_file_hex(init);
    if (!init.empty()) cell.config.init_sha256 = init_digests[init];
  }
  // Every ratio against its data before any run starts.
  for (const std::string& warning : check_grid_bias_ratios(grid)) {
    std::fprintf(stderr, "ffr-bench: warning: %s\n", warning.c_str());
  }
  for (const GridCell& cell : grid.cells) {
    if (cell.config.model == "resnet50" && cell.config.init_weights.empty()) {
      std::fprintf(stderr, "ffr-bench: warning: resnet50 from random weights: the paper fine-tunes ImageNet weights "
                           "(--init weights/resnet50.safetensors, tools/convert_weights.py); CPU runs name a small "
                           "model (--model resnet_demo --image-size 0)\n");
      break;
    }
  }
  // The plan as the folder stands: stage-2 runs of cells whose stage-1 search is done there are
  // planned at the chosen rate, the others are pending (counted, listed with their placeholder).
  const std::vector<GridRun> all = plan_runs(grid, completed_runs({o.out}));
  const std::vector<GridRun> mine = shard_runs(all, shard);
  const auto searches = std::count_if(all.begin(), all.end(), [](const GridRun& r) { return r.stage1_search; });
  const auto pending = std::count_if(all.begin(), all.end(), [](const GridRun& r) { return r.pending; });
  std::printf("grid: %zu cells, %zu seeds, %zu learning rates: %zu runs in all", grid.cells.size(), grid.seeds.size(),
              grid.learning_rates.size(), all.size());
  if (searches > 0) {
    std::printf(" (%lld FFR stage-1 search runs over %zu stage-1 rates, then %lld runs; %lld stage-2 runs wait for "
                "their cell's stage-1 choice)",
                static_cast<long long>(searches), grid.stage1_learning_rates.size(),
                static_cast<long long>(all.size()) - static_cast<long long>(searches), static_cast<long long>(pending));
  }
  if (shard.count > 1) std::printf(", %zu in shard %d/%d", mine.size(), shard.index, shard.count);
  std::printf("; output %s\n", o.out.c_str());
  if (o.dry_run) {
    for (const GridRun& r : mine) {
      std::printf("  %s%s\n", run_dir(o.out, r).c_str(),
                  r.stage1_search ? "  (stage-1 search)" : r.pending ? "  (stage-1 rate chosen after its search)" : "");
    }
    return;
  }
  std::fflush(stdout);
  ensure_writable_folder("--out", o.out);
  if (o.slurm.enabled) {
    write_slurm_jobs(o.slurm, grid, o.out);
    return;
  }
  install_interrupt_handler();
  if (o.grid_worker) {  // one of several processes: the launcher writes the report
    const GridWorkerSummary w = run_grid_worker(grid, {o.out, shard, {}}, run_experiment, grid_printer(o.out));
    std::printf("worker: %lld runs done here, %lld found complete\n", static_cast<long long>(w.runs.ran),
                static_cast<long long>(w.runs.resumed));
    for (const std::string& held : w.held_elsewhere) std::printf("left to a worker on another host: %s\n", held.c_str());
    return;
  }
  WorkerPlan plan;
  plan.processes = o.processes;
  plan.devices = o.devices.empty() ? std::vector<int>{} : parse_devices(o.devices);
  plan.per_device = o.workers_per_device;
  plan.threads = o.base.compute_threads;
  GridRunSummary ran;
  if (plan.processes > 0 || !plan.devices.empty()) {
    ran.runs = int64_t(mine.size());
    for (const GridRun& r : mine) ran.resumed += !r.pending && has_result(run_dir(o.out, r)) ? 1 : 0;
    const WorkersOutcome workers = run_worker_processes(
        plan, [&] { return shard_runs(plan_runs(grid, completed_runs({o.out})), shard); }, o.out);
    ran.seconds = workers.seconds;
    ran.pending = workers.pending;
    ran.ran = ran.runs - ran.resumed - ran.pending;  // by the workers (their logs say which)
  } else {
    ran = run_grid(grid, {o.out, shard, {}}, run_experiment, grid_printer(o.out));
  }
  ReportOptions report;
  report.wall_seconds = ran.seconds;
  if (shard.count > 1) {
    report.notes.push_back(detail::concat("Shard ", shard.index, "/", shard.count,
                                          ": this report holds the runs found in this folder; `ffr-bench merge` "
                                          "joins the shards' folders."));
  }
  if (ran.pending > 0) {
    report.notes.push_back(detail::concat(ran.pending, " stage-2 runs wait for FFR stage-1 searches run by other shards: "
                                          "rerun this shard once they are done (in this folder or merged into it)."));
  }
  const GridReport result = report_grid(grid, {o.out}, o.out, report);
  std::printf("\n%lld runs done now, %lld already complete, in %s\n\n%s\nreport: %s\n",
              static_cast<long long>(ran.ran), static_cast<long long>(ran.resumed), format_duration(ran.seconds).c_str(),
              format_summary_table(result.summary).c_str(), result.files.report_md.c_str());
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<GridCommandOptions>();
  std::string presets_help = "experiments, comma-separated:";
  for (const std::string& p : preset_names()) presets_help += "\n  " + p + ": " + preset_description(p);
  std::vector<std::string> models;
  for (const ModelInfo& m : available_models()) models.push_back(m.name);

  sub.add_option("--preset", o->presets, presets_help)->delimiter(',')->check(CLI::IsMember(preset_names()));
  sub.add_option("--manifest", o->manifests,
                 "data set manifest(s), one per data set (repeat the flag); table4 takes a pattern with {severity}, "
                 "e.g. data/sev{severity}/manifest.csv");
  sub.add_option("--out", o->out, "grid folder: grid.json, runs/<run>/, report.md, results.csv, *.svg")->required();
  sub.add_option("--config", o->config, "grid file (JSON, see docs/grid.md); flags override it")
      ->check(CLI::ExistingFile);
  sub.add_option("--seeds", o->seeds,
                 "seeds of the runs, comma-separated, one run each (a run's seed sets subsampling, "
                 "initialisation and batch order) [0,1,2]")->delimiter(',');
  sub.add_option("--lr", o->learning_rates,
                 "learning rate(s) of the fine-tuning (ffr stage 2) or only stage, comma-separated: the grid "
                 "searched by validation WA [1e-4,1e-5,1e-6,1e-7]")
      ->delimiter(',')->check(number_above_zero());
  sub.add_option("--ratios", o->ratios,
                 "bias ratios, comma-separated [0.9,0.95,0.97,0.99,0.999; data sets named spuco*: from 0.95, "
                 "SpuCo Animals' natural bias]")
      ->delimiter(',');
  sub.add_option("--dataset-ratios", o->dataset_ratios,
                 "one data set's own ratios, NAME=r1,r2,... (NAME: the data set's short name, as in run names; "
                 "repeat the flag per data set), instead of --ratios for it");
  sub.add_option("--lr-grid", o->lr_grid,
                 "paper: --lr everywhere; table6: FFR stage 2 searched over {1e-4 ... 1e-9} (the paper's Table 6), "
                 "other rows over --lr [paper]")
      ->check(CLI::IsMember({"paper", "table6"}));
  sub.add_option("--severities", o->severities, "table4: corruption severities [0..5]")
      ->delimiter(',')->check(CLI::Range(0, 5));
  sub.add_option("--freeze-bn", o->freeze_bn,
                 "FFR stage 2 batch-norm choices to select from: false, true or false,true (the paper; true = "
                 "statistics frozen, scale/shift trained, as the authors' code) [false,true]")
      ->delimiter(',')->check(CLI::IsMember({"false", "true"}));
  sub.add_flag("--freeze-bn-affine", o->base.freeze_batch_norm_affine,
               "the frozen-BN choice also freezes BN scale/shift (not the authors' behaviour)");
  sub.add_option("--model", o->base.model,
                 "backbone (ffr-bench models) [resnet50, the paper's, with --init; on a CPU name a small one, "
                 "e.g. resnet_demo with --image-size 0]")->check(CLI::IsMember(models));
  sub.add_option("--vit-model", o->vit_model, "table8's ViT [vit_b32; vit_small_p4 suits CPUs and 32 px images]")
      ->check(CLI::IsMember(models));
  sub.add_option("--epochs", o->base.epochs, "epochs of the fine-tuning (ffr stage 2) or only stage; also ffr stage 1 unless --stage1-epochs [20]")
      ->check(number_above_zero());
  sub.add_option("--stage1-epochs", o->base.stage1_epochs, "FFR stage 1 epochs [default: --epochs]")->check(number_above_zero());
  sub.add_option("--stage1-lr", o->stage1_learning_rates,
                 "FFR stage 1 learning rate(s), comma-separated: two or more are searched in every full-FFR cell "
                 "(stage-1-only runs, chosen by mean stage-1 val WA before stage 2), one is used as is "
                 "[the --lr list, searched: the paper]")
      ->delimiter(',')->check(number_above_zero());
  sub.add_option("--image-size", o->base.image_size, "input side in pixels (0: the manifest's) [224]")
      ->check(number_above_zero(true));
  sub.add_option("--batch-size", o->base.batch_size, "batch size [128]")->check(number_above_zero());
  sub.add_option("--weight-decay", o->base.weight_decay, "Adam's coupled L2 [1e-5]")->check(number_above_zero(true));
  sub.add_option("--max-train-samples", o->base.max_train_samples, "cap on each training list (0: none) [0]")
      ->check(number_above_zero(true));
  sub.add_option("--device", o->base.device, "where to train [auto]")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  sub.add_option("--precision", o->base.precision,
                 "matmul/conv precision: fp32, tf32 (fp32 on the CPU) or bf16; auto: tf32 on CUDA, fp32 on the CPU [auto]")
      ->check(CLI::IsMember({"auto", "fp32", "tf32", "bf16"}));
  sub.add_option("--workers", o->base.loader_workers, "image decoding threads per run [2]")->check(number_above_zero());
  sub.add_option("--threads", o->base.compute_threads, "CPU compute threads (0: the machine's cores) [0]")
      ->check(number_above_zero(true));
  sub.add_flag("--deterministic", o->base.deterministic, "bit-identical results run to run");
  sub.add_option("--init", o->base.init_weights,
                 "every run starts from these weights (safetensors, torchvision/timm names: "
                 "tools/convert_weights.py); the head is re-initialised for each data set's classes")
      ->check(CLI::ExistingFile);
  sub.add_flag("--keep-head", o->base.keep_head, "with --init: keep the file's classifier head (same class count)");
  sub.add_option("--shard", o->shard, "run share i of N (0-based, e.g. 2/8): run k goes to shard k mod N [0/1]");
  sub.add_flag("--dry-run", o->dry_run, "list this shard's run folders and stop");
  sub.add_option("--processes", o->processes,
                 "CPU worker processes sharing the grid's runs (each with --threads cores, default: the cores split "
                 "evenly, pinned); no run is done twice, and a dead worker's run is taken over")
      ->check(number_above_zero());
  sub.add_option("--devices", o->devices, "CUDA devices, comma-separated (e.g. 0,1,2,3): one worker process per device");
  sub.add_option("--workers-per-device", o->workers_per_device, "with --devices: worker processes per device [1]")
      ->check(number_above_zero());
  sub.add_flag("--grid-worker", o->grid_worker)->group("");  // set by --processes/--devices for their workers
  add_slurm_options(sub, o->slurm);
  sub.callback([&sub, o] {
    require_unique("--seeds", o->seeds);
    require_unique("--lr", o->learning_rates);
    require_unique("--stage1-lr", o->stage1_learning_rates);
    require_unique("--ratios", o->ratios);
    require_unique("--severities", o->severities);
    for (double r : o->ratios) {
      if (r <= 0.0 || r >= 1.0) throw UsageError(detail::concat("--ratios: ", r, " is not in (0, 1)"));
    }
    if (o->presets.empty() && o->config.empty()) throw UsageError("--preset: required (or --config with presets or cells)");
    check_worker_plan({o->processes, o->devices.empty() ? std::vector<int>{} : parse_devices(o->devices),
                       o->workers_per_device, o->base.compute_threads});
    check_slurm_options(sub, o->slurm);
    run(sub, *o);
  });
}

const bool registered = register_command(
    {"grid", "the paper's experiments: presets x data sets x ratios x seeds x learning rates (resumable, shardable)",
     setup});

}  // namespace
}  // namespace ffr::bench
