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

#include <algorithm>
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

// The op profile's largest self times per step, and what no range covers (the harness, the loss's
// host-side glue).
void print_op_profile(const PerfResult& r) {
  const double steps = double(r.step_ms.size());
  double window_ms = 0.0, ranged_ms = 0.0;
  for (double ms : r.step_ms) window_ms += ms;
  for (const OpProfileEntry& e : r.op_profile) ranged_ms += e.self_ms;
  std::printf("  op profile (host time per step; self = minus nested ranges; %.1f ms per step in all):\n",
              window_ms / steps);
  std::printf("    %-36s %9s %9s %7s %7s\n", "range", "self ms", "total ms", "self %", "calls");
  const size_t shown = std::min<size_t>(r.op_profile.size(), 30);
  for (size_t i = 0; i < shown; ++i) {
    const OpProfileEntry& e = r.op_profile[i];
    std::printf("    %-36s %9.2f %9.2f %6.1f%% %7.0f\n", e.name.c_str(), e.self_ms / steps, e.total_ms / steps,
                window_ms > 0 ? 100.0 * e.self_ms / window_ms : 0.0, double(e.calls) / steps);
  }
  if (r.op_profile.size() > shown) std::printf("    (%zu more ranges)\n", r.op_profile.size() - shown);
  std::printf("    %-36s %9.2f\n", "(outside any range)", (window_ms - ranged_ms) / steps);
}

void run_perf(PerfOptions& o) {
  PerfConfig& c = o.config;
  c.device = resolve_device(o.device);
  c.precision = resolve_precision(o.precision, c.device);
  const PerfResult r = measure_steps(c);
  const char* kind = c.api         ? "inference through InferenceModel::classify_batch"
                     : c.inference ? "inference (eval, forward only)"
                                   : "training (forward, loss, backward, Adam)";
  std::printf("%s on %s, %s: %s, batch %lld, %lld px, %lld classes, %lld step(s) after %lld warm-up, %d thread(s)\n",
              kind, c.device.str().c_str(), precision_name(c.precision), c.model.c_str(),
              static_cast<long long>(c.batch_size), static_cast<long long>(r.image_size),
              static_cast<long long>(c.num_classes), static_cast<long long>(c.steps),
              static_cast<long long>(c.warmup), r.threads);
  std::printf("  %.1f images/s; ms per step: median %.2f, min %.2f, max %.2f\n", r.images_per_s,
              r.ms_per_step_median, r.ms_per_step_min, r.ms_per_step_max);
  std::printf("  peak memory: host allocator %.1f MiB, process max RSS %.1f MiB, device %.1f MiB\n",
              mib(r.peak_host_bytes), mib(r.max_rss_bytes), mib(r.peak_device_bytes));
  const double cpu_s = r.cpu_user_s + r.cpu_system_s;
  std::printf("  timed window: CPU %.2f s user + %.2f s kernel (%.1f%% kernel), %lld minor / %lld major page faults\n",
              r.cpu_user_s, r.cpu_system_s, cpu_s > 0 ? 100.0 * r.cpu_system_s / cpu_s : 0.0,
              static_cast<long long>(r.minor_page_faults), static_cast<long long>(r.major_page_faults));
  if (!r.inference_plan.empty()) std::printf("  %s\n", r.inference_plan.c_str());
  if (c.op_profile) print_op_profile(r);
  if (o.json) {
    nlohmann::json line = {{"model", c.model},
                                 {"batch", c.batch_size},
                                 {"image_size", r.image_size},
                                 {"num_classes", c.num_classes},
                                 {"device", c.device.str()},
                                 {"precision", precision_name(c.precision)},
                                 {"threads", r.threads},
                                 {"mode", c.inference ? "inference" : "train"},
                                 {"api", c.api},
                                 {"steps", c.steps},
                                 {"warmup", c.warmup},
                                 {"images_per_s", r.images_per_s},
                                 {"ms_per_step_median", r.ms_per_step_median},
                                 {"ms_per_step_min", r.ms_per_step_min},
                                 {"ms_per_step_max", r.ms_per_step_max},
                                 {"step_ms", r.step_ms},
                                 {"peak_host_bytes", r.peak_host_bytes},
                                 {"max_rss_bytes", r.max_rss_bytes},
                                 {"peak_device_bytes", r.peak_device_bytes},
                                 {"cpu_user_s", r.cpu_user_s},
                                 {"cpu_system_s", r.cpu_system_s},
                                 {"minor_page_faults", r.minor_page_faults},
                                 {"major_page_faults", r.major_page_faults},
                                 {"inference_plan", r.inference_plan}};
    if (c.op_profile) {
      nlohmann::json ops = nlohmann::json::array();
      for (const OpProfileEntry& e : r.op_profile) {
        ops.push_back({{"name", e.name}, {"calls", e.calls}, {"total_ms", e.total_ms}, {"self_ms", e.self_ms}});
      }
      line["op_profile"] = ops;
    }
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
  sub.add_flag("--api", c.api,
               "with --inference: time the embedding API (InferenceModel::classify_batch on 8-bit images of the "
               "model's size) instead of the bare forward pass");
  sub.add_option("--threads", c.threads, "CPU compute threads (0: the machine's cores)")->check(non_negative())
      ->capture_default_str();
  sub.add_flag("--op-profile", c.op_profile,
               "print where the timed steps' host time goes, op by op (self and total ms per step; CPU: the "
               "ops' time; CUDA: launch cost only, use Nsight there); also in the JSON");
  sub.add_option("--seed", c.seed, "seed of the weights and the random batch")->capture_default_str();
  sub.add_flag("--json", o->json, "end stdout with one JSON line of the results");
  sub.callback([o] { run_perf(*o); });
}

const bool registered = register_command(
    {"perf", "time training (or --inference) steps of a model on random data: images/s, ms/step, peak memory",
     setup_perf});

}  // namespace
}  // namespace ffr::bench
