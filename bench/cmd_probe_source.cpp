// `ffr-bench probe-source`: trains a classifier to tell real from synthetic images and reports its
// held-out accuracy, overall, per source and per class (ffr/source_probe.h). Well above 50 %
// means the synthetic images carry a fingerprint a model can learn.
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "bench/progress.h"
#include "data/manifest.h"
#include "engine/atomic_file.h"
#include "ffr/source_probe.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace ffr::bench {
namespace {

struct ProbeOptions {
  SourceProbeConfig config;
  std::string out;
};

void write_json(const std::string& path, const SourceProbeConfig& c, const SourceProbeResult& r) {
  nlohmann::json classes = nlohmann::json::array();
  for (const SourceProbeClass& k : r.per_class) {
    classes.push_back({{"y", k.y},
                       {"correct", k.correct},
                       {"total", k.total},
                       {"real_correct", k.real_correct},
                       {"real_total", k.real_total},
                       {"synthetic_correct", k.synthetic_correct},
                       {"synthetic_total", k.synthetic_total}});
  }
  const nlohmann::json doc = {{"manifest", c.manifest},
                              {"model", c.model},
                              {"epochs", c.epochs},
                              {"learning_rate", c.learning_rate},
                              {"bias_ratio", c.bias_ratio},
                              {"seed", c.seed},
                              {"train_per_source", r.train_per_source},
                              {"heldout_per_source", r.heldout_per_source},
                              {"heldout", r.heldout_description},
                              {"accuracy", r.accuracy},
                              {"real_accuracy", r.real_accuracy},
                              {"synthetic_accuracy", r.synthetic_accuracy},
                              {"per_class", classes},
                              {"epochs_run", r.epochs_run},
                              {"train_accuracy", r.train_accuracy},
                              {"train_real_accuracy", r.train_real_accuracy},
                              {"train_synthetic_accuracy", r.train_synthetic_accuracy},
                              {"untrained_train_accuracy", r.untrained_train_accuracy},
                              {"learned", r.learned},
                              {"verdict", source_probe_verdict_text(r)},
                              {"train_loss", r.train_loss},
                              {"device", r.device},
                              {"seconds", r.seconds}};
  write_text_atomically(path, doc.dump(2) + "\n");
}

void run_probe(const ProbeOptions& o) {
  const SourceProbeResult r = probe_source(o.config, progress_printer("probe-source"));
  end_progress_line();
  const data::DatasetInfo info = data::read_dataset_info(data::sidecar_path(o.config.manifest));
  std::printf("real vs synthetic, %s on %s, %lld epoch(s): trained on %lld + %lld images; held out %s, "
              "%lld + %lld images\n\n",
              o.config.model.c_str(), r.device.c_str(), static_cast<long long>(o.config.epochs),
              static_cast<long long>(r.train_per_source), static_cast<long long>(r.train_per_source),
              r.heldout_description.c_str(), static_cast<long long>(r.heldout_per_source),
              static_cast<long long>(r.heldout_per_source));
  std::printf("  %-24s %9s %9s %11s\n", "class", "accuracy", "real", "synthetic");
  auto pct = [](int64_t a, int64_t b) { return b > 0 ? 100.0 * double(a) / double(b) : 0.0; };
  for (const SourceProbeClass& k : r.per_class) {
    const std::string name = std::to_string(k.y) + " " + info.class_names[size_t(k.y)];
    std::printf("  %-24s %8.1f%% %8.1f%% %10.1f%%\n", name.c_str(), pct(k.correct, k.total),
                pct(k.real_correct, k.real_total), pct(k.synthetic_correct, k.synthetic_total));
  }
  std::printf("  %-24s %8.1f%% %8.1f%% %10.1f%%\n", "all", 100 * r.accuracy, 100 * r.real_accuracy,
              100 * r.synthetic_accuracy);
  std::printf("  %-24s %8.1f%% %8.1f%% %10.1f%%\n", "all, training images", 100 * r.train_accuracy,
              100 * r.train_real_accuracy, 100 * r.train_synthetic_accuracy);
  std::printf("\n%lld epoch(s) run; held-out accuracy %.1f%% (chance: 50%%): %s\n",
              static_cast<long long>(r.epochs_run), 100 * r.accuracy, source_probe_verdict_text(r).c_str());
  if (!o.out.empty()) {
    std::filesystem::create_directories(o.out);
    const std::string path = (std::filesystem::path(o.out) / "probe_source.json").string();
    write_json(path, o.config, r);
    std::printf("wrote %s\n", path.c_str());
  }
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<ProbeOptions>();
  SourceProbeConfig& c = o->config;
  sub.add_option("--manifest", c.manifest, "data set manifest (CSV with a JSON sidecar)")
      ->required()->check(CLI::ExistingFile);
  sub.add_option("--model", c.model, "model name (ffr-bench models)")->capture_default_str();
  sub.add_option("--epochs", c.epochs, "at most this many training epochs (fewer once training accuracy plateaus)")
      ->check(positive())->capture_default_str();
  sub.add_option("--patience", c.patience,
                 "stop after this many epochs without training accuracy rising (0: run all --epochs)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--lr", c.learning_rate, "Adam learning rate")->check(positive())->capture_default_str();
  sub.add_option("--ratio", c.bias_ratio, "subsample real train to this bias ratio first (default: all of it)")
      ->check(open_unit_interval());
  sub.add_option("--max-per-source", c.max_per_source, "at most this many training images per source (0: all)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--image-size", c.image_size, "input side in pixels (0: the manifest's)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--batch-size", c.batch_size, "batch size")->check(positive())->capture_default_str();
  sub.add_option("--seed", c.seed, "seed of the probe's subsampling, initialisation and batch order")->capture_default_str();
  sub.add_option("--device", c.device, "where to run")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  sub.add_option("--workers", c.loader_workers, "image decoding threads")->check(positive())
      ->capture_default_str();
  sub.add_option("--out", o->out, "folder to write probe_source.json into");
  sub.callback([o] { run_probe(*o); });
}

const bool registered = register_command(
    {"probe-source", "train a real-vs-synthetic classifier and report its held-out accuracy", setup});

}  // namespace
}  // namespace ffr::bench
