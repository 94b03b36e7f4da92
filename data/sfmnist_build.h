// The built-in benchmark, Spurious Fashion-MNIST (DESIGN.md): four Fashion-MNIST classes on four
// procedural backgrounds, class y's majority background being b = y, with real and synthetic
// images, written as PNG files + a manifest so it goes through the same loader as user data.
//
// Splits, from Debian's Fashion-MNIST:
// - train/real: a per-class real pool of the train split; a fraction bias_ratio on the majority
//   background, the rest spread evenly over the others (at least 1 per group);
// - val/real: half of the test split, biased at bias_ratio with at least 10 per group;
// - test/real: the other half, balanced over the backgrounds;
// - train/synthetic: variants of a disjoint per-class source pool, as many per group as USB,
//   ASB, FFR and biased pretraining take at any of supported_ratios (synthetic_requirement);
// - val/synthetic and test/synthetic: held-out variants of a third disjoint pool (the paper's
//   Table 3 evaluates on synthetic images too).
// Deterministic from the seed: the same config writes byte-identical files.
#pragma once

#include "data/image.h"
#include "data/manifest.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace ffr::data {

struct SpuriousFashionMnistConfig {
  std::filesystem::path out;  // folder to create (manifest.csv, manifest.json, images/)
  uint64_t seed = 0;
  std::vector<int> classes = {0, 2, 7, 8};  // Fashion-MNIST labels: T-shirt/top, Pullover, Sneaker, Bag
  int image_size = 32;
  double bias_ratio = 0.9;  // of the written train and val splits; runs subsample further
  int severity = 0;         // corruption of the synthetic images, 0..5 (the paper's Table 4)
  int real_per_class = 2000;               // real train pool
  int synthetic_source_per_class = 2000;   // garments the synthetic train images are variants of
  int heldout_source_per_class = 200;      // garments of the held-out synthetic val/test images
  int synthetic_eval_per_group = 50;       // held-out synthetic images per group, in val and in test
  int eval_per_class = 500;                // real val and real test images per class (500: half the test split each)
  int64_t synthetic_per_group = 0;         // > 0: exactly this many per group; 0: what the protocol needs
  // The bias-agnostic pool (the paper's Table 5): synthetic train images "generated from a class-only
  // prompt", marked prompt_kind=agnostic. The generator picks their background from its own prior,
  // not from the bias pools: the class's majority background with agnostic_majority_prior, the
  // others evenly (a generator learnt from biased photos repeats the bias, as the paper found for
  // Stable Diffusion's class-only CelebA-HQ images). Per class: -1: as many as the bias-aware pool
  // holds of the class; 0: none.
  int64_t agnostic_per_class = -1;
  double agnostic_majority_prior = 0.7;
  std::vector<double> supported_ratios = {0.9, 0.95, 0.97, 0.99, 0.999};  // runs may use these (>= bias_ratio)
  int threads = 0;                          // 0: all cores
  std::filesystem::path fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
  bool replace_existing = false;
};

struct BuildProgress {
  std::string stage;  // "reading Fashion-MNIST", "rendering", "writing manifest"
  int64_t done = 0;
  int64_t total = 0;
};
using BuildProgressCallback = std::function<void(const BuildProgress&)>;

struct BuildSummary {
  std::filesystem::path manifest;  // <out>/manifest.csv
  int64_t images = 0;
  int64_t real_train = 0, synthetic_train = 0, real_val = 0, real_test = 0, synthetic_heldout = 0;
  int64_t synthetic_agnostic = 0;  // the bias-agnostic pool (train)
};

// Builds the data set into a staging folder beside config.out and renames it into place at the
// end, so an error or a crash leaves nothing half-written. Throws ffr::InputError for a bad
// config or when config.out exists (unless replace_existing). Progress is reported from the
// calling thread.
BuildSummary build_spurious_fashion_mnist(const SpuriousFashionMnistConfig& config,
                                          const BuildProgressCallback& progress = {});

// A grid of samples for the docs: one row per class; per background, 2 real then 2 synthetic
// images; a last row shows one synthetic image at severities 0..5. Each image is enlarged
// `zoom` times (nearest neighbour, so the fingerprint stays visible).
RgbImage render_spurious_fashion_mnist_preview(const SpuriousFashionMnistConfig& config, int zoom);

}  // namespace ffr::data
