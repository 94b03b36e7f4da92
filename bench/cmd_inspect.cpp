// `ffr-bench inspect`: what the protocol makes of a manifest: per split, real and synthetic
// samples in every (y, b) group at one bias ratio and augmentation mode.
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "data/groups.h"
#include "data/image_check.h"
#include "data/manifest.h"
#include "data/protocol.h"
#include "engine/error.h"

#include <cstdio>
#include <memory>
#include <optional>

namespace ffr::bench {
namespace {

struct InspectOptions {
  std::string manifest;
  std::string root;
  double ratio = 0.99;
  std::string aug = "none";
  std::string synthetic = "balanced";
  uint64_t seed = 0;
  data::ProtocolConfig protocol;
  bool check_images = false;
  int threads = 4;
};

// --check-images: every missing or undecodable image, all listed at once.
void check_images(const data::Manifest& manifest, int threads) {
  const std::vector<data::ImageProblem> problems = data::check_manifest_images(manifest, threads);
  if (problems.empty()) {
    std::printf("images: all %zu readable (headers checked)\n", manifest.samples.size());
    return;
  }
  for (const data::ImageProblem& p : problems) std::fprintf(stderr, "  %s\n", p.message.c_str());
  throw InputError(detail::concat(problems.size(), " of ", manifest.samples.size(), " images of ",
                                  manifest.csv_path.string(), " are missing or undecodable (listed above)"));
}

data::SyntheticDistribution parse_synthetic(const std::string& name) {
  if (name == "balanced") return data::SyntheticDistribution::Balanced;
  if (name == "biased") return data::SyntheticDistribution::Biased;
  if (name == "agnostic") return data::SyntheticDistribution::BiasAgnostic;
  throw InputError(detail::concat("--synthetic: unknown '", name, "' (expected balanced, biased or agnostic)"));
}

void print_table(const data::Manifest& manifest, const data::GroupIndex& groups, const data::SplitGroupCounts& row) {
  std::printf("\n%s\n", row.name.c_str());
  std::printf("  %-28s %-16s %9s %9s\n", "y (class)", "b (bias)", "real", "synthetic");
  int64_t real = 0, synthetic = 0;
  for (int g = 0; g < groups.num_groups(); ++g) {
    const auto [y, b] = groups.pair(g);
    const std::string class_label = detail::concat(y, " ", manifest.info.class_names[size_t(y)]);
    const std::string bias_label = detail::concat(b, " ", manifest.info.bias_names[size_t(b)]);
    std::printf("  %-28s %-16s %9lld %9lld\n", class_label.c_str(), bias_label.c_str(),
                static_cast<long long>(row.real[size_t(g)]), static_cast<long long>(row.synthetic[size_t(g)]));
    real += row.real[size_t(g)];
    synthetic += row.synthetic[size_t(g)];
  }
  std::printf("  %-45s %9lld %9lld\n", "total", static_cast<long long>(real), static_cast<long long>(synthetic));
}

void run_inspect(const InspectOptions& options) {
  const data::Manifest manifest = data::read_manifest(
      options.manifest, options.root.empty() ? std::nullopt : std::optional<std::filesystem::path>(options.root));
  data::ProtocolConfig config = options.protocol;
  config.bias_ratio = options.ratio;
  config.augmentation = data::parse_augmentation(options.aug);
  config.synthetic = parse_synthetic(options.synthetic);
  config.seed = options.seed;
  if (options.check_images) check_images(manifest, options.threads);
  const data::ExperimentSplits splits = data::make_experiment_splits(manifest, config);
  const data::GroupIndex groups(manifest.info);

  std::printf("%s: %zu samples, %d classes x %d bias values, %d groups, image size %d\n",
              manifest.csv_path.string().c_str(), manifest.samples.size(), groups.num_classes(),
              groups.num_biases(), groups.num_groups(), manifest.info.image_size);
  std::printf("protocol: bias ratio %g, augmentation %s, synthetic %s, seed %llu\n", config.bias_ratio,
              options.aug.c_str(), options.synthetic.c_str(), static_cast<unsigned long long>(config.seed));
  const auto rows = data::protocol_group_counts(manifest, splits, groups);
  for (const auto& row : rows) print_table(manifest, groups, row);

  // The ratio the real train split ended at, per class (the majority's share).
  const data::GroupCounts& train = rows.front().real;
  std::printf("\nreal train majority share per class:");
  for (int y = 0; y < groups.num_classes(); ++y) {
    int64_t all = 0;
    for (int g : groups.groups_of_class(y)) all += train[size_t(g)];
    const int g = groups.group(y, splits.majority_bias[size_t(y)]);
    std::printf(" %s %.4f", manifest.info.class_names[size_t(y)].c_str(), all ? double(train[size_t(g)]) / double(all) : 0.0);
  }
  std::printf("\nmajority share, all classes: real train %.4f, real val %.4f\n", splits.train_bias_ratio.achieved,
              splits.val_bias_ratio.achieved);
  for (const std::string& warning : splits.warnings) std::fprintf(stderr, "ffr-bench: warning: %s\n", warning.c_str());
}

void setup(CLI::App& sub) {
  auto options = std::make_shared<InspectOptions>();
  sub.add_option("--manifest", options->manifest, "manifest CSV")->required();
  sub.add_option("--root", options->root, "image folder (default: the manifest's folder)");
  sub.add_option("--ratio", options->ratio, "bias ratio r")->check(open_unit_interval())->capture_default_str();
  sub.add_option("--aug", options->aug, "use of synthetic data")
      ->check(CLI::IsMember({"none", "usb", "asb", "ffr"}))->capture_default_str();
  sub.add_option("--synthetic", options->synthetic, "synthetic set shape (biased: FFR's)")
      ->check(CLI::IsMember({"balanced", "biased", "agnostic"}))->capture_default_str();
  sub.add_option("--seed", options->seed, "data seed: the subsampling's (as a run's seed)")->capture_default_str();
  sub.add_option("--train-min-per-group", options->protocol.train_min_per_group, "real train samples kept per group, at least")
      ->capture_default_str();
  sub.add_option("--val-min-per-group", options->protocol.val_min_per_group, "val samples kept per group, at least")
      ->capture_default_str();
  sub.add_flag("--check-images", options->check_images,
               "read every image's header first; list each missing or undecodable file, fail if any");
  sub.add_option("--threads", options->threads, "threads for --check-images")->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.callback([options] { run_inspect(*options); });
}

const bool registered =
    register_command({"inspect", "per split, real and synthetic samples per group after the protocol's rules", setup});

}  // namespace
}  // namespace ffr::bench
