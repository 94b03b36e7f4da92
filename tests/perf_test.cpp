// ffr::measure_steps (ffr/perf.h), the library side of `ffr-bench perf` (the CLI and its JSON:
// tests/perf_cli.sh): step counts, statistics and memory numbers that can be right.
#include "ffr/perf.h"

#include "engine/error.h"

#include <gtest/gtest.h>

namespace ffr {
namespace {

PerfConfig tiny(bool inference) {
  PerfConfig c;
  c.model = "resnet_tiny";
  c.batch_size = 4;
  c.image_size = 16;
  c.num_classes = 10;
  c.steps = 3;
  c.warmup = 1;
  c.inference = inference;
  return c;
}

TEST(Perf, TrainingAndInferenceStepsOnTheCpu) {
  for (bool inference : {false, true}) {
    SCOPED_TRACE(inference ? "inference" : "training");
    const PerfResult r = measure_steps(tiny(inference));
    ASSERT_EQ(r.step_ms.size(), 3u);
    EXPECT_EQ(r.image_size, 16);
    EXPECT_GT(r.ms_per_step_min, 0.0);
    EXPECT_LE(r.ms_per_step_min, r.ms_per_step_median);
    EXPECT_LE(r.ms_per_step_median, r.ms_per_step_max);
    double total = 0.0;
    for (double ms : r.step_ms) total += ms;
    EXPECT_NEAR(r.images_per_s, 4 * 3 / (total / 1000.0), 1e-6 * r.images_per_s);
    EXPECT_GT(r.peak_host_bytes, 0u);
    EXPECT_GE(r.max_rss_bytes, r.peak_host_bytes) << "the allocator's peak is resident memory";
    EXPECT_EQ(r.peak_device_bytes, 0u);
    EXPECT_GE(r.threads, 1);
  }
}

TEST(Perf, TrainingNeedsMoreMemoryThanInference) {
  EXPECT_GT(measure_steps(tiny(false)).peak_host_bytes, measure_steps(tiny(true)).peak_host_bytes);
}

TEST(Perf, DefaultImageSizeIsTheModels) {
  PerfConfig c = tiny(true);
  c.image_size = 0;
  c.steps = 1;
  c.warmup = 0;
  EXPECT_GT(measure_steps(c).image_size, 0);
}

TEST(Perf, BadConfigsAreInputErrors) {
  PerfConfig c = tiny(false);
  c.steps = 0;
  EXPECT_THROW(measure_steps(c), InputError);
  c = tiny(false);
  c.batch_size = 0;
  EXPECT_THROW(measure_steps(c), InputError);
  c = tiny(false);
  c.model = "resnet51";
  EXPECT_THROW(measure_steps(c), InputError);
  c = tiny(false);
  c.api = true;  // the API is inference only
  EXPECT_THROW(measure_steps(c), InputError);
}

TEST(Perf, TheInferenceApiRunsTheSameBatches) {
  PerfConfig c = tiny(true);
  c.api = true;
  const PerfResult r = measure_steps(c);
  ASSERT_EQ(r.step_ms.size(), size_t(c.steps));
  EXPECT_GT(r.images_per_s, 0.0);
  EXPECT_GT(r.peak_host_bytes, 0u);
}

}  // namespace
}  // namespace ffr
