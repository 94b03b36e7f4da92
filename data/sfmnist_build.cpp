#include "data/sfmnist_build.h"

#include "data/fashion_mnist.h"
#include "data/sfmnist_plan.h"
#include "data/sfmnist_render.h"
#include "data/staging_directory.h"
#include "engine/atomic_file.h"
#include "engine/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <tuple>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

namespace fs = std::filesystem;

namespace ffr::data {

namespace {

using sfmnist::ImageJob;

// build.json's "builder". v2: the bias-agnostic pool (prompt_kind agnostic) joined the data set;
// the manifest's content changes with it, so runs keyed on it (with_data_hashes) see new data.
constexpr const char* kBuilderName = "ffr-engine spurious-fashion-mnist v2";
constexpr const char* kEarlierBuilderNames[] = {"ffr-engine spurious-fashion-mnist v1"};  // ours too, for --force

std::string relative_image_path(const ImageJob& job, int64_t serial) {
  char name[32];
  std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(serial));
  return detail::concat("images/", split_name(job.split), "/", source_name(job.source), job.agnostic ? "-agnostic" : "",
                        "/", name);
}

// Renders and writes every job on `threads` threads. Each image depends only on its job, so the
// files are the same whatever the scheduling. The calling thread reports progress.
void render_all(const std::vector<ImageJob>& jobs, const std::vector<std::string>& paths, const fs::path& root,
                const FashionMnistSplit& train, const FashionMnistSplit& test,
                const SpuriousFashionMnistConfig& config, const BuildProgressCallback& progress) {
  const int threads = config.threads > 0 ? config.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mutex;
  std::condition_variable finished;
  int running = threads;

  auto work = [&] {
    try {
      for (size_t i; !failed && (i = next++) < jobs.size(); ++done) {
        write_png(root / paths[i], sfmnist::render_planned_image(jobs[i], train, test, config, config.severity));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
    std::lock_guard<std::mutex> lock(mutex);
    --running;
    finished.notify_all();
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  {
    std::unique_lock<std::mutex> lock(mutex);
    while (!finished.wait_for(lock, std::chrono::milliseconds(500), [&] { return running == 0; })) {
      if (progress) progress({"rendering", int64_t(done.load()), int64_t(jobs.size())});
    }
  }
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  if (progress) progress({"rendering", int64_t(jobs.size()), int64_t(jobs.size())});
}

nlohmann::json config_json(const SpuriousFashionMnistConfig& config) {
  return {{"builder", kBuilderName},
          {"seed", config.seed},
          {"classes", config.classes},
          {"image_size", config.image_size},
          {"bias_ratio", config.bias_ratio},
          {"severity", config.severity},
          {"real_per_class", config.real_per_class},
          {"synthetic_source_per_class", config.synthetic_source_per_class},
          {"heldout_source_per_class", config.heldout_source_per_class},
          {"synthetic_eval_per_group", config.synthetic_eval_per_group},
          {"eval_per_class", config.eval_per_class},
          {"synthetic_per_group", config.synthetic_per_group},
          {"supported_ratios", config.supported_ratios},
          {"agnostic_per_class", config.agnostic_per_class},
          {"agnostic_majority_prior", config.agnostic_majority_prior}};
}

// --force replaces a folder only when it is one this builder wrote (its build.json names us) and
// holds nothing else, or is empty: a mistyped --out must never delete someone's files.
void check_replaceable(const fs::path& out) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  if (!fs::is_directory(out, ec)) {
    throw InputError(detail::concat(out.string(), ": exists and is not a folder; --force replaces only a data set "
                                    "folder written by `ffr-bench prepare`"));
  }
  if (fs::is_empty(out, ec)) return;
  const fs::path build_json = out / "build.json";
  bool ours = false;
  if (fs::is_regular_file(build_json, ec)) {
    std::ifstream in(build_json, std::ios::binary);
    const nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    ours = doc.is_object() && doc.contains("builder") && doc["builder"] == kBuilderName;
    for (const char* earlier : kEarlierBuilderNames) ours |= doc.is_object() && doc.value("builder", "") == earlier;
  }
  if (!ours) {
    throw InputError(detail::concat(out.string(), ": has no build.json written by `ffr-bench prepare`, so it is not "
                                    "a data set of ours; --force will not delete it (choose another --out)"));
  }
  static const char* const kOurs[] = {"manifest.csv", "manifest.json", "build.json", "images"};
  for (const auto& entry : fs::directory_iterator(out, ec)) {
    const std::string name = entry.path().filename().string();
    if (std::find(std::begin(kOurs), std::end(kOurs), name) == std::end(kOurs)) {
      throw InputError(detail::concat(out.string(), ": holds ", name, ", which `ffr-bench prepare` did not write; "
                                      "--force will not delete it (move it out, or choose another --out)"));
    }
  }
}

}  // namespace

BuildSummary build_spurious_fashion_mnist(const SpuriousFashionMnistConfig& config,
                                          const BuildProgressCallback& progress) {
  sfmnist::validate_config(config);
  if (config.out.empty()) throw InputError("--out: no output folder given");
  // Fail on an existing output before the slow part.
  if (config.replace_existing) check_replaceable(config.out);
  StagingDirectory staging(config.out, config.replace_existing);

  if (progress) progress({"reading Fashion-MNIST", 0, 2});
  const FashionMnistSplit train = read_fashion_mnist(config.fashion_mnist_dir, true);
  const FashionMnistSplit test = read_fashion_mnist(config.fashion_mnist_dir, false);
  if (progress) progress({"reading Fashion-MNIST", 2, 2});

  const sfmnist::Pools pools = sfmnist::make_pools(train, test, config);
  const std::vector<ImageJob> jobs = sfmnist::plan_images(pools, config);

  Manifest manifest;
  manifest.csv_path = staging.path() / "manifest.csv";
  manifest.root = staging.path();
  for (int label : config.classes) manifest.info.class_names.push_back(fashion_mnist_class_names()[size_t(label)]);
  for (const char* name : sfmnist::background_names()) manifest.info.bias_names.push_back(name);
  for (int y = 0; y < int(config.classes.size()); ++y) {
    manifest.info.majority_bias.push_back(y);
    for (int b = 0; b < sfmnist::kNumBackgrounds; ++b) manifest.info.groups.emplace_back(y, b);
  }
  manifest.info.image_size = config.image_size;

  const std::string generator =
      config.severity == 0 ? "sfmnist-generator-v1" : detail::concat("sfmnist-generator-v1+corruption-s", config.severity);
  std::vector<std::string> paths;
  std::vector<std::tuple<Split, Source, bool>> kinds;  // image folders: (split, source, agnostic)
  std::vector<int64_t> serials;
  BuildSummary summary;
  for (const ImageJob& job : jobs) {
    // Serial numbers count within each (split, source) folder.
    size_t k = 0;
    while (k < kinds.size() && kinds[k] != std::make_tuple(job.split, job.source, job.agnostic)) ++k;
    if (k == kinds.size()) {
      kinds.emplace_back(job.split, job.source, job.agnostic);
      serials.push_back(0);
    }
    paths.push_back(relative_image_path(job, serials[k]++));
    Sample s;
    s.path = paths.back();
    s.split = job.split;
    s.y = job.y;
    s.b = job.b;
    s.source = job.source;
    s.orig_id = detail::concat("fashion-mnist/", job.from_test_split ? "t10k" : "train", "/", job.fashion_mnist_index);
    if (job.source == Source::Synthetic) {
      s.generator = generator;
      // The bias-agnostic pool's prompt names the class only; b records what the generator drew.
      s.prompt = job.agnostic ? detail::concat("a ", manifest.info.class_names[size_t(job.y)])
                              : detail::concat("a ", manifest.info.class_names[size_t(job.y)], " on a ",
                                               manifest.info.bias_names[size_t(job.b)], " background");
      s.prompt_kind = job.agnostic ? PromptKind::Agnostic : PromptKind::Aware;
    }
    manifest.samples.push_back(std::move(s));
    const bool real = job.source == Source::Real;
    if (job.agnostic) summary.synthetic_agnostic++;
    else if (job.split == Split::Train) (real ? summary.real_train : summary.synthetic_train)++;
    else if (!real) summary.synthetic_heldout++;
    else (job.split == Split::Val ? summary.real_val : summary.real_test)++;
  }
  for (const auto& [split, source, agnostic] : kinds) {
    fs::create_directories(staging.path() / "images" / split_name(split) /
                           (std::string(source_name(source)) + (agnostic ? "-agnostic" : "")));
  }

  render_all(jobs, paths, staging.path(), train, test, config, progress);

  if (progress) progress({"writing manifest", 0, 1});
  write_manifest(manifest);
  write_text_atomically((staging.path() / "build.json").string(), config_json(config).dump(2) + "\n");
  staging.commit();
  if (progress) progress({"writing manifest", 1, 1});

  summary.manifest = config.out / "manifest.csv";
  summary.images = int64_t(jobs.size());
  return summary;
}

}  // namespace ffr::data
