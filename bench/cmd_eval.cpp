// `ffr-bench eval`: a checkpoint on a manifest: the per-group table, WA and BA. The model is
// rebuilt from the checkpoint's metadata (architecture, classes, image size). For the validation
// split, the bias-ratio subsampling of the run that wrote the checkpoint is repeated (its ratio and
// seed are in the metadata), so the numbers match the run's; --ratio/--seed override them.
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "data/manifest.h"
#include "data/protocol.h"
#include "engine/error.h"
#include "engine/parallel.h"
#include "ffr/checkpoint.h"
#include "ffr/evaluation.h"
#include "ffr/experiment_json.h"

#include <cstdio>
#include <memory>
#include <optional>

namespace ffr::bench {
namespace {

struct EvalCommandOptions {
  std::string checkpoint, manifest, split = "test", source = "real", device = "auto";
  double ratio = 0.0;      // 0: the checkpoint's run's
  int64_t seed = -1;       // -1: the checkpoint's run's
  int64_t batch_size = 256;
  int workers = 2;
  int threads = 0;
  bool ignore_class_names = false;
};

// The samples to evaluate: test as it is; val subsampled to the run's bias ratio when known.
data::IndexList select(const data::Manifest& manifest, const EvalCommandOptions& o,
                       const std::optional<ExperimentConfig>& run, std::string& described) {
  const data::Source source = o.source == "real" ? data::Source::Real : data::Source::Synthetic;
  if (o.split == "test" || source == data::Source::Synthetic) {
    described = o.split + " / " + o.source + " (all samples)";
    return data::select_samples(manifest, o.split == "test" ? data::Split::Test : data::Split::Val, source);
  }
  data::ProtocolConfig protocol;
  protocol.bias_ratio = o.ratio > 0 ? o.ratio : (run ? run->bias_ratio : 0.0);
  protocol.seed = o.seed >= 0 ? uint64_t(o.seed) : (run ? run->seed : 0);
  if (protocol.bias_ratio <= 0.0) {
    described = "val / real (all samples: no bias ratio in the checkpoint; pass --ratio to subsample)";
    return data::select_samples(manifest, data::Split::Val, data::Source::Real);
  }
  described = detail::concat("val / real at bias ratio ", protocol.bias_ratio, ", seed ", protocol.seed);
  return data::make_experiment_splits(manifest, protocol).val;
}

void run_eval(const EvalCommandOptions& o) {
  const Device device = resolve_device(o.device);
  set_compute_threads(o.threads);
  LoadedCheckpoint loaded = load_checkpoint(o.checkpoint, device);
  std::optional<ExperimentConfig> run;
  if (auto it = loaded.info.extra.find("config"); it != loaded.info.extra.end()) {
    run = config_from_json(it->second, o.checkpoint + " (metadata 'config')");
  }
  const data::Manifest manifest = data::read_manifest(o.manifest);
  check_checkpoint_classes(loaded.info, o.checkpoint, manifest.info.class_names, o.manifest, o.ignore_class_names);
  const data::GroupIndex groups(manifest.info);
  std::string described;
  const data::IndexList samples = select(manifest, o, run, described);
  if (samples.empty()) throw InputError(o.manifest + ": no samples in " + described);

  EvalOptions eval;
  eval.device = device;
  eval.batch_size = o.batch_size;
  eval.loader.image_size = int(loaded.info.image_size);
  eval.loader.workers = o.workers;
  const SplitMetrics m = evaluate(*loaded.model, manifest, samples, groups, eval);

  std::printf("%s (%s, %lld px) on %s: %s, %zu images, %s\n\n", o.checkpoint.c_str(),
              loaded.info.architecture.c_str(), static_cast<long long>(loaded.info.image_size), o.manifest.c_str(),
              described.c_str(), samples.size(), device.str().c_str());
  std::printf("  %-24s %-18s %8s %8s %9s\n", "y (class)", "b (bias)", "correct", "total", "accuracy");
  for (const GroupAccuracy& g : m.groups) {
    const std::string y = detail::concat(g.y, " ", manifest.info.class_names[size_t(g.y)]);
    const std::string b = detail::concat(g.b, " ", manifest.info.bias_names[size_t(g.b)]);
    if (g.total > 0) {
      std::printf("  %-24s %-18s %8lld %8lld %8.1f%%\n", y.c_str(), b.c_str(), static_cast<long long>(g.correct),
                  static_cast<long long>(g.total), 100.0 * g.accuracy());
    } else {
      std::printf("  %-24s %-18s %8s %8s %9s\n", y.c_str(), b.c_str(), "-", "0", "-");
    }
  }
  std::printf("\nWA (worst-group accuracy) %.2f%%   BA (balanced accuracy) %.2f%%   average accuracy %.2f%%\n",
              100.0 * m.worst_group_accuracy, 100.0 * m.balanced_accuracy, 100.0 * m.average_accuracy);
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<EvalCommandOptions>();
  sub.add_option("--checkpoint", o->checkpoint, "a run's best.safetensors")->required()->check(CLI::ExistingFile);
  sub.add_option("--manifest", o->manifest, "data set manifest (CSV with a JSON sidecar)")
      ->required()->check(CLI::ExistingFile);
  sub.add_option("--split", o->split, "split to evaluate")->check(CLI::IsMember({"test", "val"}))->capture_default_str();
  sub.add_option("--source", o->source, "real images, or held-out synthetic ones (Table 3)")
      ->check(CLI::IsMember({"real", "synthetic"}))->capture_default_str();
  sub.add_option("--ratio", o->ratio, "val: bias ratio to subsample to (default: the checkpoint's run's)")
      ->check(open_unit_interval());
  sub.add_option("--seed", o->seed, "val: subsampling seed (default: the checkpoint's run's)")
      ->check(non_negative());
  sub.add_option("--device", o->device, "where to run")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  sub.add_option("--batch-size", o->batch_size, "evaluation batch size")->check(positive())
      ->capture_default_str();
  sub.add_option("--workers", o->workers, "image decoding threads")->check(positive())->capture_default_str();
  sub.add_option("--threads", o->threads, "CPU compute threads (0: the machine's cores)")->check(non_negative())
      ->capture_default_str();
  sub.add_flag("--ignore-class-names", o->ignore_class_names,
               "score even when the manifest's class names differ from the checkpoint's (same count)");
  sub.callback([o] { run_eval(*o); });
}

const bool registered =
    register_command({"eval", "evaluate a checkpoint on a manifest: per-group table, WA, BA", setup});

}  // namespace
}  // namespace ffr::bench
