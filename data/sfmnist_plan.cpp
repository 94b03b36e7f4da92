#include "data/sfmnist_plan.h"

#include "data/bias_ratio.h"
#include "data/groups.h"
#include "data/sfmnist_render.h"
#include "data/synthetic_sets.h"
#include "engine/error.h"
#include "engine/rng.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace ffr::data::sfmnist {

namespace {

// Philox streams: one per decision, and one per image (kind << 40 | serial), so images never
// share random numbers and adding a kind never shifts another's.
constexpr uint64_t kPoolStream = 1000;          // + Fashion-MNIST label (train), + 100 (test)
constexpr uint64_t kSyntheticSourceStream = 2000;  // + group
constexpr uint64_t kAgnosticStream = 3000;         // + class
enum ImageKind : uint64_t { kRealTrain = 1, kRealVal, kRealTest, kSynthTrain, kSynthVal, kSynthTest, kSynthAgnostic };
uint64_t image_stream(ImageKind kind, uint64_t serial) { return (uint64_t(kind) << 40) | serial; }

constexpr int kTrainPerClass = 6000;  // Fashion-MNIST: 6000 train and 1000 test images per class
constexpr int kTestPerClass = 1000;

}  // namespace

void validate_config(const SpuriousFashionMnistConfig& config) {
  const int classes = int(config.classes.size());
  if (classes < 2 || classes > kNumBackgrounds) {
    throw InputError(detail::concat("--classes: give 2 to ", kNumBackgrounds, " classes (class y's majority "
                                    "background is b = y, and there are ", kNumBackgrounds, " backgrounds), got ", classes));
  }
  if (std::set<int>(config.classes.begin(), config.classes.end()).size() != config.classes.size()) {
    throw InputError("--classes: a class is listed twice");
  }
  for (int c : config.classes) {
    if (c < 0 || c > 9) throw InputError(detail::concat("--classes: Fashion-MNIST label ", c, " outside 0..9"));
  }
  if (config.image_size < 8 || config.image_size > 1024) {
    throw InputError(detail::concat("--image-size must be in 8..1024, got ", config.image_size));
  }
  if (!(config.bias_ratio >= 0.5 && config.bias_ratio < 1.0)) {
    throw InputError(detail::concat("--ratio must be in [0.5, 1), got ", config.bias_ratio));
  }
  if (config.severity < 0 || config.severity > 5) {
    throw InputError(detail::concat("--severity must be in 0..5, got ", config.severity));
  }
  if (config.real_per_class < kNumBackgrounds || config.synthetic_source_per_class < 1 ||
      config.heldout_source_per_class < 2 || config.synthetic_eval_per_group < 0 || config.synthetic_per_group < 0 ||
      config.agnostic_per_class < -1) {
    throw InputError("pool sizes: --real-per-class >= 4, --synthetic-source-per-class >= 1, "
                     "--heldout-source-per-class >= 2, per-group counts >= 0");
  }
  if (!(config.agnostic_majority_prior >= 0.0 && config.agnostic_majority_prior <= 1.0)) {
    throw InputError(detail::concat("--agnostic-majority-prior must be in [0, 1], got ", config.agnostic_majority_prior));
  }
  const int used = config.real_per_class + config.synthetic_source_per_class + config.heldout_source_per_class;
  if (used > kTrainPerClass) {
    throw InputError(detail::concat("pool sizes: real + synthetic source + held-out source = ", used,
                                    " per class, but Fashion-MNIST has ", kTrainPerClass, " train images per class"));
  }
  const int min_val = 10 * kNumBackgrounds;  // the protocol's 10 per group, plus a majority
  if (config.eval_per_class < min_val || config.eval_per_class > kTestPerClass / 2) {
    throw InputError(detail::concat("--eval-per-class must be in ", min_val, "..", kTestPerClass / 2,
                                    " (val and test each take that many of a class's ", kTestPerClass,
                                    " test images), got ", config.eval_per_class));
  }
  if (config.threads < 0) throw InputError("--threads must be >= 0");
}

Pools make_pools(const FashionMnistSplit& train, const FashionMnistSplit& test, const SpuriousFashionMnistConfig& config) {
  Pools pools;
  for (int label : config.classes) {
    std::vector<int> train_idx, test_idx;
    for (int i = 0; i < train.count; ++i) {
      if (train.labels[size_t(i)] == label) train_idx.push_back(i);
    }
    for (int i = 0; i < test.count; ++i) {
      if (test.labels[size_t(i)] == label) test_idx.push_back(i);
    }
    Rng train_rng(config.seed, kPoolStream + uint64_t(label));
    train_rng.shuffle(train_idx);
    Rng test_rng(config.seed, kPoolStream + 100 + uint64_t(label));
    test_rng.shuffle(test_idx);
    FFR_CHECK(int(train_idx.size()) >= config.real_per_class + config.synthetic_source_per_class +
                                           config.heldout_source_per_class,
              "Fashion-MNIST class ", label, " has only ", train_idx.size(), " train images");
    auto take = [&](int& at, int n) {
      std::vector<int> part(train_idx.begin() + at, train_idx.begin() + at + n);
      at += n;
      return part;
    };
    int at = 0;
    pools.real.push_back(take(at, config.real_per_class));
    pools.synthetic_source.push_back(take(at, config.synthetic_source_per_class));
    pools.heldout_source.push_back(take(at, config.heldout_source_per_class));
    // Val from the first half of the shuffled test images, test from the second: disjoint.
    const auto half = std::ptrdiff_t(test_idx.size() / 2), n = std::ptrdiff_t(config.eval_per_class);
    pools.val.emplace_back(test_idx.begin(), test_idx.begin() + n);
    pools.test.emplace_back(test_idx.begin() + half, test_idx.begin() + half + n);
  }
  return pools;
}

std::vector<int64_t> biased_background_counts(int64_t n, int majority, double ratio, int min_minority) {
  const int others = kNumBackgrounds - 1;
  int64_t rest = n - int64_t(std::floor(ratio * double(n) + 0.5));
  rest = std::max<int64_t>(rest, int64_t(min_minority) * others);
  FFR_CHECK(rest <= n, "biased_background_counts: ", n, " images cannot hold ", min_minority, " per minority group");
  std::vector<int64_t> counts(kNumBackgrounds, 0);
  counts[size_t(majority)] = n - rest;
  int k = 0;
  for (int b = 0; b < kNumBackgrounds; ++b) {
    if (b == majority) continue;
    counts[size_t(b)] = rest / others + (k++ < rest % others ? 1 : 0);
  }
  return counts;
}

namespace {

void add_assigned(std::vector<ImageJob>& jobs, const std::vector<int>& pool, const std::vector<int64_t>& per_background,
                  Split split, int y, bool from_test, ImageKind kind, uint64_t& serial) {
  // The pool is already in random order, so assigning backgrounds in runs is a random assignment.
  size_t at = 0;
  for (int b = 0; b < kNumBackgrounds; ++b) {
    for (int64_t k = 0; k < per_background[size_t(b)]; ++k) {
      jobs.push_back({split, Source::Real, y, b, from_test, pool[at++], image_stream(kind, serial++)});
    }
  }
}

void add_synthetic(std::vector<ImageJob>& jobs, const std::vector<int>& sources, Split split, int y, int b,
                   int64_t count, Rng& rng, ImageKind kind, uint64_t& serial) {
  for (int64_t k = 0; k < count; ++k) {
    const int source = sources[rng.below(sources.size())];
    jobs.push_back({split, Source::Synthetic, y, b, false, source, image_stream(kind, serial++)});
  }
}

}  // namespace

std::vector<ImageJob> plan_images(const Pools& pools, const SpuriousFashionMnistConfig& config) {
  const int classes = int(config.classes.size());
  std::vector<ImageJob> jobs;

  // Real train, and the synthetic counts it calls for.
  uint64_t serial = 0;
  DatasetInfo info;
  for (int y = 0; y < classes; ++y) {
    info.class_names.push_back(std::to_string(y));
    for (int b = 0; b < kNumBackgrounds; ++b) info.groups.emplace_back(y, b);
  }
  info.bias_names.assign(kNumBackgrounds, "");
  const GroupIndex groups(info);
  GroupCounts real_counts(size_t(groups.num_groups()), 0);
  std::vector<int> majority(static_cast<size_t>(classes));
  for (int y = 0; y < classes; ++y) {
    majority[size_t(y)] = y;
    const auto per_background = biased_background_counts(config.real_per_class, y, config.bias_ratio, 1);
    for (int b = 0; b < kNumBackgrounds; ++b) real_counts[size_t(groups.group(y, b))] = per_background[size_t(b)];
    add_assigned(jobs, pools.real[size_t(y)], per_background, Split::Train, y, false, kRealTrain, serial);
  }

  GroupCounts synthetic(size_t(groups.num_groups()), config.synthetic_per_group);
  if (config.synthetic_per_group == 0) {
    std::vector<double> ratios;
    for (double r : config.supported_ratios) {
      if (r >= config.bias_ratio && r < 1.0) ratios.push_back(r);
    }
    if (ratios.empty()) ratios.push_back(config.bias_ratio);
    // Runs may keep 0 or 1 real sample in a minority group; cover both.
    synthetic = synthetic_requirement(real_counts, groups, majority, ratios, 0);
    const GroupCounts with_floor = synthetic_requirement(real_counts, groups, majority, ratios, 1);
    for (size_t g = 0; g < synthetic.size(); ++g) synthetic[g] = std::max(synthetic[g], with_floor[g]);
  }
  serial = 0;
  for (int y = 0; y < classes; ++y) {
    for (int b = 0; b < kNumBackgrounds; ++b) {
      const int g = groups.group(y, b);
      Rng rng(config.seed, kSyntheticSourceStream + uint64_t(g));
      add_synthetic(jobs, pools.synthetic_source[size_t(y)], Split::Train, y, b, synthetic[size_t(g)], rng,
                    kSynthTrain, serial);
    }
  }

  // The bias-agnostic pool: new variants of the same synthetic-source garments, backgrounds from
  // the generator's prior (see SpuriousFashionMnistConfig::agnostic_per_class).
  serial = 0;
  for (int y = 0; y < classes; ++y) {
    int64_t n = config.agnostic_per_class;
    if (n < 0) {
      n = 0;
      for (int b = 0; b < kNumBackgrounds; ++b) n += synthetic[size_t(groups.group(y, b))];
    }
    Rng rng(config.seed, kAgnosticStream + uint64_t(y));
    const std::vector<int>& sources = pools.synthetic_source[size_t(y)];
    for (int64_t k = 0; k < n; ++k) {
      int b = y;
      if (rng.uniform() >= config.agnostic_majority_prior) {
        b = int(rng.below(kNumBackgrounds - 1));
        if (b >= y) ++b;  // one of the others, evenly
      }
      ImageJob job{Split::Train, Source::Synthetic, y, b, false, sources[rng.below(sources.size())],
                   image_stream(kSynthAgnostic, serial++)};
      job.agnostic = true;
      jobs.push_back(job);
    }
  }

  // Val (biased, >= 10 per group) and test (balanced), real then held-out synthetic each. The
  // held-out pool's first half feeds val, its second half test, so no garment is in both.
  for (Split split : {Split::Val, Split::Test}) {
    const bool val = split == Split::Val;
    serial = 0;
    for (int y = 0; y < classes; ++y) {
      const auto& pool = val ? pools.val[size_t(y)] : pools.test[size_t(y)];
      const int64_t n = int64_t(pool.size());
      std::vector<int64_t> per_background(kNumBackgrounds, n / kNumBackgrounds);
      if (val) {
        per_background = biased_background_counts(n, y, config.bias_ratio, 10);
      } else {
        for (int b = 0; b < n % kNumBackgrounds; ++b) ++per_background[size_t(b)];
      }
      add_assigned(jobs, pool, per_background, split, y, true, val ? kRealVal : kRealTest, serial);
    }
    serial = 0;
    for (int y = 0; y < classes; ++y) {
      const auto& heldout = pools.heldout_source[size_t(y)];
      const auto half = std::ptrdiff_t(heldout.size() / 2);
      const std::vector<int> sources = val ? std::vector<int>(heldout.begin(), heldout.begin() + half)
                                           : std::vector<int>(heldout.begin() + half, heldout.end());
      for (int b = 0; b < kNumBackgrounds; ++b) {
        Rng rng(config.seed, kSyntheticSourceStream + (val ? 100u : 200u) + uint64_t(groups.group(y, b)));
        add_synthetic(jobs, sources, split, y, b, config.synthetic_eval_per_group, rng, val ? kSynthVal : kSynthTest,
                      serial);
      }
    }
  }
  return jobs;
}

RgbImage render_planned_image(const ImageJob& job, const FashionMnistSplit& train, const FashionMnistSplit& test,
                              const SpuriousFashionMnistConfig& config, int severity) {
  const uint8_t* garment = (job.from_test_split ? test : train).image(job.fashion_mnist_index);
  return job.source == Source::Real ? render_real(garment, job.b, config.image_size, config.seed, job.stream)
                                    : render_synthetic(garment, job.b, config.image_size, severity, config.seed, job.stream);
}

}  // namespace ffr::data::sfmnist
