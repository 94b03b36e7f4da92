// `ffr-bench probe-features`: does a trained model's penultimate layer encode real vs synthetic?
// A linear probe (L1 logistic regression) on the checkpoint's features of held-out images, and a
// 2-D PCA embedding as an SVG (ffr/feature_probe.h). `probe-source` asks whether the data carries
// a learnable fingerprint; this asks whether a USB/ASB/FFR model kept it.
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "data/manifest.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/parallel.h"
#include "ffr/checkpoint.h"
#include "ffr/experiment.h"
#include "ffr/feature_probe.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace ffr::bench {
namespace {

struct ProbeFeaturesOptions {
  std::string checkpoint, manifest, out, device = "auto";
  double c = 1.0;
  int64_t max_per_source = 0;
  int64_t seed = 0;
  int64_t batch_size = 256;
  int workers = 2;
  int threads = 0;
  bool ignore_class_names = false;
};

void run_probe(const ProbeFeaturesOptions& o) {
  const Device device = resolve_device(o.device);
  set_compute_threads(o.threads);
  LoadedCheckpoint loaded = load_checkpoint(o.checkpoint, device);
  const data::Manifest manifest = data::read_manifest(o.manifest);
  check_checkpoint_classes(loaded.info, o.checkpoint, manifest.info.class_names, o.manifest, o.ignore_class_names);
  EvalOptions eval;
  eval.device = device;
  eval.batch_size = o.batch_size;
  eval.loader.image_size = int(loaded.info.image_size);
  eval.loader.workers = o.workers;
  FeatureProbeOptions options;
  options.c = o.c;
  options.max_per_source = o.max_per_source;
  options.seed = uint64_t(o.seed);
  const FeatureProbeResult r = probe_features(*loaded.model, manifest, eval, options);

  std::printf("%s (%s, %lld px) on %s: %s, %lld features\n", o.checkpoint.c_str(), loaded.info.architecture.c_str(),
              static_cast<long long>(loaded.info.image_size), o.manifest.c_str(), r.heldout_description.c_str(),
              static_cast<long long>(r.feature_dim));
  std::printf("linear probe (L1 logistic regression, C %g) fitted on %lld + %lld images, scored on %lld + %lld:\n",
              o.c, static_cast<long long>(r.fit_per_source), static_cast<long long>(r.fit_per_source),
              static_cast<long long>(r.scored_per_source), static_cast<long long>(r.scored_per_source));
  std::printf("source accuracy %.2f%% (chance 50%%): real %.2f%%, synthetic %.2f%%\n", 100 * r.accuracy,
              100 * r.real_accuracy, 100 * r.synthetic_accuracy);
  if (o.out.empty()) return;
  std::filesystem::create_directories(o.out);
  const nlohmann::json doc = {{"checkpoint", o.checkpoint},
                              {"manifest", o.manifest},
                              {"heldout", r.heldout_description},
                              {"c", o.c},
                              {"seed", o.seed},
                              {"feature_dim", r.feature_dim},
                              {"fit_per_source", r.fit_per_source},
                              {"scored_per_source", r.scored_per_source},
                              {"accuracy", r.accuracy},
                              {"real_accuracy", r.real_accuracy},
                              {"synthetic_accuracy", r.synthetic_accuracy},
                              {"pca_explained_variance", {r.pca_explained[0], r.pca_explained[1]}}};
  const std::string json_path = (std::filesystem::path(o.out) / "probe_features.json").string();
  const std::string svg_path = (std::filesystem::path(o.out) / "embedding.svg").string();
  write_text_atomically(svg_path, feature_embedding_svg(r, "penultimate features, " + loaded.info.architecture));
  write_text_atomically(json_path, doc.dump(2) + "\n");
  std::printf("wrote %s and %s\n", json_path.c_str(), svg_path.c_str());
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<ProbeFeaturesOptions>();
  sub.add_option("--checkpoint", o->checkpoint, "a run's best.safetensors")->required()->check(CLI::ExistingFile);
  sub.add_option("--manifest", o->manifest, "data set manifest with held-out real and synthetic images")
      ->required()->check(CLI::ExistingFile);
  sub.add_option("--out", o->out, "folder for probe_features.json and embedding.svg (PCA); none: print only");
  sub.add_option("--c", o->c, "the probe's inverse L1 strength")->check(positive())->capture_default_str();
  sub.add_option("--max-per-source", o->max_per_source, "at most this many held-out images per source (0: all)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--seed", o->seed, "seed of the halves and the cut")->check(non_negative())->capture_default_str();
  sub.add_option("--device", o->device, "where to run")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  sub.add_option("--batch-size", o->batch_size, "feature extraction batch size")->check(positive())
      ->capture_default_str();
  sub.add_option("--workers", o->workers, "image decoding threads")->check(positive())->capture_default_str();
  sub.add_option("--threads", o->threads, "CPU compute threads (0: the machine's cores)")->check(non_negative())
      ->capture_default_str();
  sub.add_flag("--ignore-class-names", o->ignore_class_names,
               "probe even when the manifest's class names differ from the checkpoint's (same count)");
  sub.callback([o] { run_probe(*o); });
}

const bool registered = register_command(
    {"probe-features", "linear probe of a checkpoint's penultimate features: real vs synthetic (Figure 5)", setup});

}  // namespace
}  // namespace ffr::bench
