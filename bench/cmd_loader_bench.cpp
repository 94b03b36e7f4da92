// `ffr-bench loader-bench`: images/s the loader decodes and preprocesses (host side: PNG
// decode, resize, normalise, batch assembly), with N worker threads.
#include "bench/command.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "data/sampler.h"
#include "engine/error.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

namespace ffr::bench {
namespace {

struct LoaderBenchOptions {
  std::string manifest;
  int image_size = 224;
  int workers = int(std::max(1u, std::thread::hardware_concurrency()));
  int batch = 128;
  int batches = 40;
  int prefetch = 4;
  uint64_t seed = 0;
};

void run_loader_bench(const LoaderBenchOptions& options) {
  const data::Manifest manifest = data::read_manifest(options.manifest);
  data::IndexList all(manifest.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  auto sampler = std::make_shared<data::ShuffledSampler>(all, options.batch, options.seed, /*drop_last=*/true);
  data::LoaderConfig config;
  config.image_size = options.image_size;
  config.workers = options.workers;
  config.prefetch_batches = options.prefetch;
  data::Loader loader(manifest, sampler, config, {0, 0}, data::Loader::kEndless);

  // The first batches include thread start-up and a cold page cache; time the steady state.
  constexpr int kWarmup = 2;
  int64_t images = 0;
  auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < kWarmup + options.batches; ++k) {
    const data::HostBatch* batch = loader.next();
    if (!batch) break;
    if (k == kWarmup - 1) start = std::chrono::steady_clock::now();
    if (k >= kWarmup) images += batch->size;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("loader: %d px, batch %d, %d workers: %lld images in %.2f s = %.0f images/s (%.1f ms/batch)\n",
              options.image_size, options.batch, options.workers, static_cast<long long>(images), seconds,
              double(images) / seconds, 1e3 * seconds / double(images) * options.batch);
}

void setup(CLI::App& sub) {
  auto options = std::make_shared<LoaderBenchOptions>();
  sub.add_option("--manifest", options->manifest, "manifest CSV")->required();
  sub.add_option("--image-size", options->image_size, "model input side")->capture_default_str();
  sub.add_option("--workers", options->workers, "decoding threads")->capture_default_str();
  sub.add_option("--batch-size", options->batch, "batch size")->capture_default_str();
  sub.add_option("--batches", options->batches, "batches to time (after 2 warm-up batches)")->capture_default_str();
  sub.add_option("--prefetch", options->prefetch, "batches decoded ahead")->capture_default_str();
  sub.add_option("--seed", options->seed, "data seed: the sampler's shuffle")->capture_default_str();
  sub.callback([options] { run_loader_bench(*options); });
}

const bool registered =
    register_command({"loader-bench", "images/s decoded + preprocessed by the data loader", setup});

}  // namespace
}  // namespace ffr::bench
