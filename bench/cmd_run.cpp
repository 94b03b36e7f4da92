// `ffr-bench run`: one experiment configuration over several seeds, each into <out>/seed-<s>/,
// then the WA/BA table (mean +- std over seeds). Flags are parsed into ffr::ExperimentConfig here;
// ffr::run_experiment does the work. A seed whose folder already holds a completed run of the same
// configuration is not rerun, and an unfinished one goes on from its last complete epoch
// (ffr/resume_state.h), so an interrupted command can simply be started again; --restart throws
// unfinished runs away instead.
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "bench/progress.h"
#include "engine/error.h"
#include "ffr/experiment.h"
#include "ffr/run_folder.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

namespace ffr::bench {
namespace {

struct RunOptions {
  ExperimentConfig config;
  std::string augmentation = "none", method = "erm", stages = "full", synthetic = "balanced";
  std::vector<uint64_t> seeds{0};
  std::string out;
  bool restart = false;
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

void run(RunOptions& o) {
  ExperimentConfig& c = o.config;
  // CLI11 has checked the names; the parsers map them (and would name a bad one).
  c.augmentation = data::parse_augmentation(o.augmentation);
  c.method = parse_method(o.method);
  c.stages = parse_stage_order(o.stages);
  c.synthetic = parse_synthetic_distribution(o.synthetic);
  if (c.stages != StageOrder::Full && c.augmentation != data::Augmentation::FFR) {
    throw InputError("--stages " + o.stages + " applies to --aug ffr only");
  }
  std::vector<ExperimentResult> results;
  for (uint64_t seed : o.seeds) {
    c.seed = seed;
    const std::string dir = (std::filesystem::path(o.out) / ("seed-" + std::to_string(seed))).string();
    if (o.restart && !has_result(dir) && std::filesystem::exists(dir)) RunFolder(dir).start_fresh();
    const bool done = has_result(dir);
    results.push_back(run_experiment(c, dir, progress_printer("seed " + std::to_string(seed))));
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
  sub.add_option("--seeds", o->seeds, "comma-separated seeds, one run each")->delimiter(',')->capture_default_str();
  sub.add_option("--model", c.model, "model name (ffr-bench models)")->capture_default_str();
  sub.add_option("--image-size", c.image_size, "input side in pixels (0: the manifest's)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--lr", c.learning_rate, "learning rate (stage 2 for ffr)")->check(positive())
      ->capture_default_str();
  sub.add_option("--epochs", c.epochs, "epochs (stage 2 for ffr)")->check(positive())->capture_default_str();
  sub.add_option("--stage1-lr", c.stage1_learning_rate, "ffr stage 1 learning rate")->check(positive())
      ->capture_default_str();
  sub.add_option("--stage1-epochs", c.stage1_epochs, "ffr stage 1 epochs")->check(positive())
      ->capture_default_str();
  sub.add_option("--stages", o->stages, "ffr stage order (the paper's Table 1)")
      ->check(CLI::IsMember({"full", "stage1", "stage2", "stage2-then-1"}))->capture_default_str();
  sub.add_option("--synthetic", o->synthetic, "shape of the synthetic set (Tables 2 and 5)")
      ->check(CLI::IsMember({"balanced", "biased", "agnostic"}))->capture_default_str();
  sub.add_flag("--freeze-bn", c.freeze_batch_norm, "ffr stage 2: freeze batch-norm statistics and affine parameters");
  sub.add_option("--weight-decay", c.weight_decay, "Adam's coupled L2")->check(non_negative())
      ->capture_default_str();
  sub.add_option("--batch-size", c.batch_size, "batch size")->check(positive())->capture_default_str();
  sub.add_option("--groupdro-eta", c.groupdro_step_size, "GroupDRO step size eta")->check(non_negative())
      ->capture_default_str();
  sub.add_option("--groupdro-c", c.groupdro_adjustment, "GroupDRO generalisation adjustment C")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--device", c.device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  sub.add_flag("--deterministic", c.deterministic, "bit-identical results run to run (fixed-order reductions)");
  sub.add_option("--workers", c.loader_workers, "image decoding threads")->check(positive())
      ->capture_default_str();
  sub.add_option("--max-train-samples", c.max_train_samples,
                 "cap on each training list, kept in group proportion (0: no cap)")
      ->check(non_negative())->capture_default_str();
  CLI::Option* init =
      sub.add_option("--init", c.init_weights,
                     "start from these weights (safetensors, torchvision/timm names: tools/convert_weights.py); "
                     "the classifier head is re-initialised for the data set's classes")
          ->check(CLI::ExistingFile);
  sub.add_flag("--keep-head", c.keep_head, "with --init: keep the file's classifier head (same class count)")
      ->needs(init);
  sub.add_flag("--restart", o->restart,
               "start unfinished runs over instead of resuming them from their last complete epoch");
  sub.callback([o] { run(*o); });
}

const bool registered = register_command(
    {"run", "run one experiment configuration over seeds and print WA/BA (mean +- std)", setup});

}  // namespace
}  // namespace ffr::bench
