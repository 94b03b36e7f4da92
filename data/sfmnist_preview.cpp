// The sample grid of docs/spurious_fashion_mnist.md, rendered from the same plan as the data set.
#include "data/fashion_mnist.h"
#include "data/sfmnist_build.h"
#include "data/sfmnist_plan.h"
#include "data/sfmnist_render.h"
#include "engine/error.h"

#include <algorithm>

namespace ffr::data {

using sfmnist::ImageJob;

RgbImage render_spurious_fashion_mnist_preview(const SpuriousFashionMnistConfig& config, int zoom) {
  sfmnist::validate_config(config);
  if (zoom < 1 || zoom > 16) throw InputError(detail::concat("preview zoom must be in 1..16, got ", zoom));
  const FashionMnistSplit train = read_fashion_mnist(config.fashion_mnist_dir, true);
  const FashionMnistSplit test = read_fashion_mnist(config.fashion_mnist_dir, false);
  const sfmnist::Pools pools = sfmnist::make_pools(train, test, config);

  // Pick, per group, the first 2 real train and 2 synthetic train images of the plan (a plan with
  // tiny synthetic counts is enough: only the first few of each group are drawn).
  SpuriousFashionMnistConfig small = config;
  small.synthetic_per_group = 2;
  small.synthetic_eval_per_group = 0;
  const std::vector<ImageJob> jobs = sfmnist::plan_images(pools, small);

  const int classes = int(config.classes.size());
  const int kPerKind = 2, kGap = 2;
  const int cell = config.image_size * zoom + kGap;
  const int columns = sfmnist::kNumBackgrounds * 2 * kPerKind;
  const int block_gap = 3 * kGap;  // wider gap between backgrounds
  const int width = columns * cell + (sfmnist::kNumBackgrounds - 1) * block_gap + kGap;
  const int height = (classes + 1) * cell + block_gap + kGap;
  RgbImage grid(width, height);
  std::fill(grid.pixels.begin(), grid.pixels.end(), uint8_t(255));

  auto paste = [&](const RgbImage& image, int left, int top) {
    for (int y = 0; y < image.height * zoom; ++y)
      for (int x = 0; x < image.width * zoom; ++x) {
        const uint8_t* s = image.at(x / zoom, y / zoom);
        std::copy(s, s + 3, grid.at(left + x, top + y));
      }
  };
  for (int y = 0; y < classes; ++y) {
    for (int b = 0; b < sfmnist::kNumBackgrounds; ++b) {
      int real = 0, synthetic = 0;
      for (const ImageJob& job : jobs) {
        if (job.split != Split::Train || job.y != y || job.b != b) continue;
        int& taken = job.source == Source::Real ? real : synthetic;
        if (taken >= kPerKind) continue;
        const int column = b * 2 * kPerKind + (job.source == Source::Real ? 0 : kPerKind) + taken++;
        paste(sfmnist::render_planned_image(job, train, test, config, config.severity), kGap + column * cell + b * block_gap,
              kGap + y * cell);
      }
    }
  }
  // Last row: one synthetic image (class 0, its majority background) at severity 0..5.
  for (const ImageJob& job : jobs) {
    if (job.split == Split::Train && job.source == Source::Synthetic && job.y == 0 && job.b == 0) {
      for (int severity = 0; severity <= 5; ++severity) {
        paste(sfmnist::render_planned_image(job, train, test, config, severity), kGap + severity * cell, kGap + classes * cell + block_gap);
      }
      break;
    }
  }
  return grid;
}

}  // namespace ffr::data
