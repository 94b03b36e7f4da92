// `ffr-bench perf`: images/s, ms per step and peak memory of whole training steps (forward,
// cross-entropy, backward, Adam) or, with --inference, forward-only eval steps, on random data
// held in memory. The work is ffr::measure_steps (ffr/perf.h); this file parses flags and prints.
// With --json the last line of stdout is one JSON object (bench/compare_pytorch.py reads it).
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "engine/error.h"
#include "engine/precision.h"
#include "ffr/experiment.h"
#include "ffr/perf.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace ffr::bench {
namespace {

struct PerfOptions {
  PerfConfig config;
  std::string device = "auto", precision = "auto";
  bool json = false;
};

double mib(size_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

void run_perf(PerfOptions& o) {
  PerfConfig& c = o.config;
  c.device = resolve_device(o.device);
  c.precision = resolve_precision(o.precision, c.device);
  const PerfResult r = measure_steps(c);
  const char* kind = c.inference ? "inference (eval, forward only)" : "training (forward, loss, backward, Adam)";
  std::printf("%s on %s, %s: %s, batch %lld, %lld px, %lld classes, %lld step(s) after %lld warm-up, %d thread(s)\n",
              kind, c.device.str().c_str(), precision_name(c.precision), c.model.c_str(),
              static_cast<long long>(c.batch_size), static_cast<long long>(r.image_size),
              static_cast<long long>(c.num_classes), static_cast<long long>(c.steps),
              static_cast<long long>(c.warmup), r.threads);
  std::printf("  %.1f images/s; ms per step: median %.2f, min %.2f, max %.2f\n", r.images_per_s,
              r.ms_per_step_median, r.ms_per_step_min, r.ms_per_step_max);
  std::printf("  peak memory: host allocator %.1f MiB, process max RSS %.1f MiB, device %.1f MiB\n",
              mib(r.peak_host_bytes), mib(r.max_rss_bytes), mib(r.peak_device_bytes));
  if (o.json) {
    const nlohmann::json line = {{"model", c.model},
                                 {"batch", c.batch_size},
                                 {"image_size", r.image_size},
                                 {"num_classes", c.num_classes},
                                 {"device", c.device.str()},
                                 {"precision", precision_name(c.precision)},
                                 {"threads", r.threads},
                                 {"mode", c.inference ? "inference" : "train"},
                                 {"steps", c.steps},
                                 {"warmup", c.warmup},
                                 {"images_per_s", r.images_per_s},
                                 {"ms_per_step_median", r.ms_per_step_median},
                                 {"ms_per_step_min", r.ms_per_step_min},
                                 {"ms_per_step_max", r.ms_per_step_max},
                                 {"step_ms", r.step_ms},
                                 {"peak_host_bytes", r.peak_host_bytes},
                                 {"max_rss_bytes", r.max_rss_bytes},
                                 {"peak_device_bytes", r.peak_device_bytes}};
    std::printf("%s\n", line.dump().c_str());
  }
  std::fflush(stdout);
}

void setup_perf(CLI::App& sub) {
  auto o = std::make_shared<PerfOptions>();
  PerfConfig& c = o->config;
  sub.add_option("--model", c.model, "model name (ffr-bench models)")->required();
  sub.add_option("--batch-size", c.batch_size, "images per step")->check(positive())->capture_default_str();
  sub.add_option("--image-size", c.image_size, "input side in pixels (0: the model's default)")
      ->check(non_negative())->capture_default_str();
  sub.add_option("--num-classes", c.num_classes, "classes of the head (ImageNet's 1000, as ffr-bench models)")
      ->check(positive())->capture_default_str();
  sub.add_option("--device", o->device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  sub.add_option("--precision", o->precision,
                 "matmul/conv precision: fp32, tf32 (fp32 on the CPU) or bf16; auto: tf32 on CUDA, fp32 on the CPU")
      ->check(CLI::IsMember({"auto", "fp32", "tf32", "bf16"}))->capture_default_str();
  sub.add_option("--steps", c.steps, "timed steps")->check(positive())->capture_default_str();
  sub.add_option("--warmup", c.warmup, "untimed steps first")->check(non_negative())->capture_default_str();
  sub.add_flag("--inference", c.inference, "time forward-only eval steps (no autograd, no optimizer)");
  sub.add_option("--threads", c.threads, "CPU compute threads (0: the machine's cores)")->check(non_negative())
      ->capture_default_str();
  sub.add_option("--seed", c.seed, "seed of the weights and the random batch")->capture_default_str();
  sub.add_flag("--json", o->json, "end stdout with one JSON line of the results");
  sub.callback([o] { run_perf(*o); });
}

const bool registered = register_command(
    {"perf", "time training (or --inference) steps of a model on random data: images/s, ms/step, peak memory",
     setup_perf});

}  // namespace
}  // namespace ffr::bench
