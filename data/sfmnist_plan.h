// Planning the Spurious Fashion-MNIST build: which Fashion-MNIST image, background and random
// stream every output image gets. Pure bookkeeping, no pixels: the builder renders the plan and
// the preview renders parts of it, so both show the same data set.
#pragma once

#include "data/fashion_mnist.h"
#include "data/image.h"
#include "data/manifest.h"
#include "data/sfmnist_build.h"

#include <cstdint>
#include <vector>

namespace ffr::data::sfmnist {

// Per class (in config.classes order): indices into the Fashion-MNIST train or test split.
struct Pools {
  std::vector<std::vector<int>> real, synthetic_source, heldout_source;  // train split, disjoint
  std::vector<std::vector<int>> val, test;                               // test split halves
};

struct ImageJob {
  Split split = Split::Train;
  Source source = Source::Real;
  int y = 0;                  // class index in the data set (0..classes-1)
  int b = 0;                  // background
  bool from_test_split = false;  // which Fashion-MNIST split fashion_mnist_index refers to
  int fashion_mnist_index = 0;
  uint64_t stream = 0;        // Philox stream of this image's randomness
  bool agnostic = false;      // synthetic from a class-only prompt (prompt_kind agnostic)
};

// Checks the config against the data: throws ffr::InputError naming the bad flag.
void validate_config(const SpuriousFashionMnistConfig& config);

Pools make_pools(const FashionMnistSplit& train, const FashionMnistSplit& test,
                 const SpuriousFashionMnistConfig& config);

// Backgrounds for n images of a class whose majority background is `majority`: round(ratio * n)
// on it, the rest spread evenly over the others (earlier backgrounds take the remainder), at least
// `min_minority` each (taken from the majority when needed).
std::vector<int64_t> biased_background_counts(int64_t n, int majority, double ratio, int min_minority);

// Every image of the data set, in manifest order: train real, train synthetic, train synthetic
// bias-agnostic, val real, val synthetic, test real, test synthetic.
std::vector<ImageJob> plan_images(const Pools& pools, const SpuriousFashionMnistConfig& config);

// Renders one planned image (severity applies to synthetic images only).
RgbImage render_planned_image(const ImageJob& job, const FashionMnistSplit& train, const FashionMnistSplit& test,
                              const SpuriousFashionMnistConfig& config, int severity);

}  // namespace ffr::data::sfmnist
