// `ffr-bench prepare`: builds the built-in Spurious Fashion-MNIST data set (or, with --preview,
// renders a grid of its images for the docs).
#include "bench/command.h"
#include "data/fashion_mnist.h"
#include "data/image.h"
#include "data/sfmnist_build.h"
#include "engine/error.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>

namespace ffr::bench {
namespace {

struct PrepareOptions {
  data::SpuriousFashionMnistConfig config;
  std::string out = "out/spurious-fashion-mnist";
  std::string classes = "T-shirt/top,Pullover,Sneaker,Bag";
  std::string preview;
  int preview_zoom = 3;
};

std::vector<int> parse_classes(const std::string& list) {
  std::vector<int> labels;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) labels.push_back(data::fashion_mnist_class(item));
  return labels;
}

// Progress on stderr: one updating line on a terminal, a line per stage otherwise.
data::BuildProgressCallback progress_printer() {
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  auto last_stage = std::make_shared<std::string>();
  auto start = std::chrono::steady_clock::now();
  return [=](const data::BuildProgress& p) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (terminal) {
      std::fprintf(stderr, "\r%-22s %8lld / %-8lld %6.1f s", p.stage.c_str(), static_cast<long long>(p.done),
                   static_cast<long long>(p.total), seconds);
      if (p.done == p.total) std::fprintf(stderr, "\n");
    } else if (p.done == p.total || *last_stage != p.stage) {
      std::fprintf(stderr, "%s: %lld / %lld (%.1f s)\n", p.stage.c_str(), static_cast<long long>(p.done),
                   static_cast<long long>(p.total), seconds);
    }
    *last_stage = p.stage;
  };
}

void run_prepare(const PrepareOptions& options) {
  data::SpuriousFashionMnistConfig config = options.config;
  config.classes = parse_classes(options.classes);
  config.out = options.out;
  if (!options.preview.empty()) {
    const data::RgbImage grid = data::render_spurious_fashion_mnist_preview(config, options.preview_zoom);
    data::write_png(options.preview, grid);
    std::printf("wrote %s (%dx%d)\n", options.preview.c_str(), grid.width, grid.height);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const data::BuildSummary summary = data::build_spurious_fashion_mnist(config, progress_printer());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s: %lld images in %.1f s\n", summary.manifest.string().c_str(),
              static_cast<long long>(summary.images), seconds);
  std::printf("  train: %lld real, %lld synthetic, %lld synthetic bias-agnostic (class-only prompts, Table 5); "
              "val: %lld real; test: %lld real; held-out synthetic: %lld\n",
              static_cast<long long>(summary.real_train), static_cast<long long>(summary.synthetic_train),
              static_cast<long long>(summary.synthetic_agnostic), static_cast<long long>(summary.real_val),
              static_cast<long long>(summary.real_test), static_cast<long long>(summary.synthetic_heldout));
}

void setup(CLI::App& sub) {
  auto options = std::make_shared<PrepareOptions>();
  data::SpuriousFashionMnistConfig& c = options->config;
  sub.add_option("--out", options->out, "folder to create (manifest.csv + images/)")->capture_default_str();
  sub.add_option("--seed", c.seed, "seed: the same seed writes byte-identical files")->capture_default_str();
  sub.add_option("--classes", options->classes, "4 (2..4) Fashion-MNIST classes, names or labels, comma-separated")
      ->capture_default_str();
  sub.add_option("--image-size", c.image_size, "side of the written images, pixels")->capture_default_str();
  sub.add_option("--ratio", c.bias_ratio,
                 "bias ratio of the written train/val splits (runs subsample further, to higher ratios)")
      ->capture_default_str();
  sub.add_option("--severity", c.severity, "corruption of the synthetic images, 0..5 (pixelate+blur+noise)")
      ->capture_default_str();
  sub.add_option("--real-per-class", c.real_per_class, "real train pool per class")->capture_default_str();
  sub.add_option("--synthetic-source-per-class", c.synthetic_source_per_class,
                 "garments per class the synthetic train images vary")->capture_default_str();
  sub.add_option("--heldout-source-per-class", c.heldout_source_per_class,
                 "garments per class for held-out synthetic val/test")->capture_default_str();
  sub.add_option("--synthetic-eval-per-group", c.synthetic_eval_per_group,
                 "held-out synthetic images per group in val and in test")->capture_default_str();
  sub.add_option("--eval-per-class", c.eval_per_class,
                 "real val and real test images per class (500 = half the Fashion-MNIST test split each)")
      ->capture_default_str();
  sub.add_option("--synthetic-per-group", c.synthetic_per_group,
                 "synthetic train images per group (0: as many as USB/ASB/FFR need up to ratio 0.999)")
      ->capture_default_str();
  sub.add_option("--agnostic-per-class", c.agnostic_per_class,
                 "bias-agnostic synthetic train images per class (class-only prompts, the paper's Table 5; -1: as "
                 "many as the bias-aware pool holds of the class; 0: none)")
      ->capture_default_str();
  sub.add_option("--agnostic-majority-prior", c.agnostic_majority_prior,
                 "the generator's own prior for those images: share on the class's majority background")
      ->capture_default_str();
  sub.add_option("--threads", c.threads, "rendering threads (0: all cores)")->capture_default_str();
  sub.add_option("--fashion-mnist-dir", c.fashion_mnist_dir, "Fashion-MNIST .gz files")->capture_default_str();
  sub.add_flag("--force", c.replace_existing, "replace --out if it exists");
  sub.add_option("--preview", options->preview, "write a PNG grid of sample images instead of building");
  sub.add_option("--preview-zoom", options->preview_zoom, "enlargement of preview images")->capture_default_str();
  sub.callback([options] { run_prepare(*options); });
}

const bool registered = register_command(
    {"prepare", "build the Spurious Fashion-MNIST data set (PNG files + manifest)", setup});

}  // namespace
}  // namespace ffr::bench
