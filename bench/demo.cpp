// `ffr-bench` with no arguments: the FFR paper's Figure 3 at one bias ratio, end to end, sized to
// finish in minutes. On a GPU: ResNet-50; on a CPU: resnet_demo (a ResNet small enough for two cores
// to train the four configurations in a few minutes, data set included).
//
// Learning rates: None, USB, ASB and FFR's stage 1 train from scratch at 1e-3; FFR's stage 2
// fine-tunes the stage-1 weights on the biased real images at 1e-5 (the paper tunes the rate per
// method by validation WA; its FFR stage 2 went as low as 1e-9: at 1e-3 stage 2 relearns the
// background shortcut within an epoch). Every run folder is kept, so a second call only reprints.
#include "bench/demo.h"

#include "bench/progress.h"
#include "data/sfmnist_build.h"
#include "engine/atomic_file.h"
#include "engine/device.h"
#include "engine/error.h"
#include "ffr/experiment.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <vector>

namespace ffr::bench {
namespace {

namespace fs = std::filesystem;

const fs::path kDataDir = "out/spurious-fashion-mnist-demo";
const fs::path kRunsDir = "out/ffr-demo";
constexpr double kBiasRatio = 0.99;

struct DemoPlan {
  std::string model;
  int64_t epochs;         // None, USB, ASB
  int64_t stage1_epochs;  // FFR
  int64_t stage2_epochs;
  double learning_rate = 1e-3;         // from scratch
  double stage2_learning_rate = 1e-5;  // FFR fine-tuning on real images
};

DemoPlan plan_for(Device device) {
  if (device.is_cuda()) return {"resnet50", 10, 10, 5};
  return {"resnet_demo", 8, 8, 4};
}

// Small pools: 500 real train images per class (495 on the majority background at r = 0.99),
// synthetic images for exactly what r = 0.99 needs, 200 val and 200 test images per class.
data::SpuriousFashionMnistConfig demo_data_config() {
  data::SpuriousFashionMnistConfig c;
  c.out = kDataDir;
  c.bias_ratio = kBiasRatio;
  c.supported_ratios = {kBiasRatio};
  c.real_per_class = 500;
  c.synthetic_source_per_class = 500;
  c.heldout_source_per_class = 50;
  c.synthetic_eval_per_group = 10;
  c.eval_per_class = 200;
  return c;
}

fs::path ensure_data_set() {
  const fs::path manifest = kDataDir / "manifest.csv";
  if (fs::exists(manifest)) {
    std::printf("data: %s (already built)\n", manifest.string().c_str());
    return manifest;
  }
  std::printf("data: building Spurious Fashion-MNIST into %s ...\n", kDataDir.string().c_str());
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  const data::BuildSummary s = data::build_spurious_fashion_mnist(demo_data_config());
  std::printf("data: %lld images in %.1f s (train: %lld real, %lld synthetic; val %lld, test %lld real)\n",
              static_cast<long long>(s.images),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              static_cast<long long>(s.real_train), static_cast<long long>(s.synthetic_train),
              static_cast<long long>(s.real_val), static_cast<long long>(s.real_test));
  return s.manifest;
}

ExperimentConfig config_for(data::Augmentation a, const DemoPlan& plan, const fs::path& manifest) {
  ExperimentConfig c;
  c.manifest = manifest.string();
  c.bias_ratio = kBiasRatio;
  c.augmentation = a;
  c.method = TrainingMethod::ERM;
  c.model = plan.model;
  c.learning_rate = a == data::Augmentation::FFR ? plan.stage2_learning_rate : plan.learning_rate;
  c.epochs = a == data::Augmentation::FFR ? plan.stage2_epochs : plan.epochs;
  c.stage1_learning_rate = plan.learning_rate;
  c.stage1_epochs = plan.stage1_epochs;
  c.seed = 0;
  return c;
}

const char* display(data::Augmentation a) {
  switch (a) {
    case data::Augmentation::None: return "None";
    case data::Augmentation::USB: return "USB";
    case data::Augmentation::ASB: return "ASB";
    case data::Augmentation::FFR: return "FFR";
  }
  return "?";
}

std::string markdown_report(const std::vector<ExperimentResult>& results, const std::vector<std::string>& dirs,
                            const DemoPlan& plan, double seconds) {
  std::ostringstream md;
  char line[512];
  md << "# ffr-bench demo: None / USB / ASB / FFR with ERM\n\n";
  md << "Spurious Fashion-MNIST (`" << results.front().config.manifest << "`), bias ratio " << kBiasRatio
     << ", seed 0, model `" << plan.model << "` on " << results.front().device << ". None/USB/ASB: lr "
     << plan.learning_rate << ", " << plan.epochs << " epochs; FFR: stage 1 lr " << plan.learning_rate << ", "
     << plan.stage1_epochs << " epochs, stage 2 lr " << plan.stage2_learning_rate << ", " << plan.stage2_epochs
     << " epochs. Epoch selection by real validation WA. Total " << int(seconds) << " s.\n\n";
  md << "| augmentation | test WA | test BA | val WA | val BA | synthetic test WA | synthetic test BA | run folder |\n";
  md << "|---|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const ExperimentResult& r = results[i];
    std::snprintf(line, sizeof line, "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | `%s` |\n",
                  display(r.config.augmentation), 100 * r.test.worst_group_accuracy, 100 * r.test.balanced_accuracy,
                  100 * r.val.worst_group_accuracy, 100 * r.val.balanced_accuracy,
                  100 * r.test_synthetic.worst_group_accuracy, 100 * r.test_synthetic.balanced_accuracy,
                  dirs[i].c_str());
    md << line;
  }
  md << "\nPer-group accuracy on the real test split, %: rows (class y, background b); the majority group of "
        "class y is b = y.\n\n| y | b |";
  for (const ExperimentResult& r : results) md << " " << display(r.config.augmentation) << " |";
  md << "\n|---|---|";
  for (size_t i = 0; i < results.size(); ++i) md << "---|";
  md << "\n";
  for (size_t g = 0; g < results.front().test.groups.size(); ++g) {
    const GroupAccuracy& first = results.front().test.groups[g];
    md << "| " << first.y << " | " << first.b << (first.y == first.b ? " (majority)" : "") << " |";
    for (const ExperimentResult& r : results) {
      std::snprintf(line, sizeof line, " %.0f |", 100 * r.test.groups[g].accuracy());
      md << line;
    }
    md << "\n";
  }
  md << "\nWA: worst-group accuracy; BA: unweighted mean of the per-group accuracies (FFR_PROTOCOL.md). "
        "One seed: differences of a few points are noise. Reproduce one row with `ffr-bench run` (flags as "
        "in each run folder's config.json).\n";
  return md.str();
}

}  // namespace

int run_demo() {
  const auto start = std::chrono::steady_clock::now();
  const Device device = default_device();
  const DemoPlan plan = plan_for(device);
  std::printf("ffr-bench demo: None / USB / ASB / FFR with ERM at bias ratio %g, model %s on %s%s\n",
              kBiasRatio, plan.model.c_str(), device.str().c_str(),
              device.is_cpu() ? (" (" + cuda_unavailable_reason() + ")").c_str() : "");
  std::printf("(ffr-bench --help lists the commands; this demo is `ffr-bench` with no arguments)\n\n");
  const fs::path manifest = ensure_data_set();

  std::vector<ExperimentResult> results;
  std::vector<std::string> dirs;
  for (data::Augmentation a :
       {data::Augmentation::None, data::Augmentation::USB, data::Augmentation::ASB, data::Augmentation::FFR}) {
    const std::string dir = (kRunsDir / plan.model / data::augmentation_name(a)).string();
    const bool done = has_result(dir);
    results.push_back(run_experiment(config_for(a, plan, manifest), dir, progress_printer(display(a))));
    if (!done) end_progress_line();
    std::printf("%-4s test WA %5.1f  BA %5.1f  (%s%.0f s)\n", display(a), 100 * results.back().test.worst_group_accuracy,
                100 * results.back().test.balanced_accuracy, done ? "reused, " : "", results.back().seconds);
    std::fflush(stdout);
    dirs.push_back(dir);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("\n%-14s %8s %8s %8s %8s %10s %10s\n", "augmentation", "test WA", "test BA", "val WA", "val BA",
              "synth WA", "synth BA");
  for (const ExperimentResult& r : results) {
    std::printf("%-14s %8.1f %8.1f %8.1f %8.1f %10.1f %10.1f\n", display(r.config.augmentation),
                100 * r.test.worst_group_accuracy, 100 * r.test.balanced_accuracy, 100 * r.val.worst_group_accuracy,
                100 * r.val.balanced_accuracy, 100 * r.test_synthetic.worst_group_accuracy,
                100 * r.test_synthetic.balanced_accuracy);
  }
  const fs::path report = kRunsDir / plan.model / "report.md";
  write_text_atomically(report.string(), markdown_report(results, dirs, plan, seconds));
  std::printf("\n(%%, real test images unless marked synthetic; one seed; %.0f s in all)\n", seconds);
  std::printf("report: %s (per-group table); run folders: %s/\n", report.string().c_str(),
              (kRunsDir / plan.model).string().c_str());
  return 0;
}

}  // namespace ffr::bench
