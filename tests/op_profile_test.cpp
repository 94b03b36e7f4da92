// The host-side op profile (engine/op_profile.h): nesting gives self = total minus children, calls
// are counted, nothing is recorded while it is off, and a real training step names its ops.
#include "engine/op_profile.h"

#include "engine/nvtx.h"
#include "ffr/perf.h"

#include <gtest/gtest.h>

#include <map>

namespace ffr {
namespace {

std::map<std::string, OpProfileEntry> by_name(const std::vector<OpProfileEntry>& entries) {
  std::map<std::string, OpProfileEntry> out;
  for (const auto& e : entries) out[e.name] = e;
  return out;
}

TEST(OpProfile, SelfTimeExcludesNestedRanges) {
  start_op_profile();
  for (int i = 0; i < 3; ++i) {
    NvtxRange outer("outer");
    volatile double sink = 0;
    for (int k = 0; k < 20000; ++k) sink = sink + k;
    {
      NvtxRange inner("inner");
      for (int k = 0; k < 20000; ++k) sink = sink + k;
    }
    NvtxRange inner_again("inner");
  }
  const auto entries = by_name(stop_op_profile());
  ASSERT_EQ(entries.size(), 2u);
  const OpProfileEntry& outer = entries.at("outer");
  const OpProfileEntry& inner = entries.at("inner");
  EXPECT_EQ(outer.calls, 3);
  EXPECT_EQ(inner.calls, 6);
  EXPECT_GT(inner.total_ms, 0.0);
  EXPECT_DOUBLE_EQ(inner.self_ms, inner.total_ms);  // a leaf
  EXPECT_NEAR(outer.self_ms, outer.total_ms - inner.total_ms, 1e-9 * (1 + outer.total_ms));
  EXPECT_GE(outer.total_ms, inner.total_ms);
}

TEST(OpProfile, RecordsNothingWhileOffAndStartsClean) {
  start_op_profile();
  { NvtxRange r("before"); }
  stop_op_profile();
  { NvtxRange r("while_off"); }
  EXPECT_FALSE(op_profile_on());
  start_op_profile();
  { NvtxRange r("after"); }
  const auto entries = by_name(stop_op_profile());
  EXPECT_EQ(entries.count("before"), 0u) << "start_op_profile clears";
  EXPECT_EQ(entries.count("while_off"), 0u);
  EXPECT_EQ(entries.count("after"), 1u);
}

TEST(OpProfile, ARangeOpenedBeforeTheStartIsNotCounted) {
  auto open = std::make_unique<NvtxRange>("opened_before");
  start_op_profile();
  open.reset();  // closes a range the profile never saw open: no entry, no stack damage
  { NvtxRange r("inside"); }
  const auto entries = by_name(stop_op_profile());
  EXPECT_EQ(entries.count("opened_before"), 0u);
  EXPECT_EQ(entries.at("inside").calls, 1);
}

TEST(OpProfile, PerfNamesTheOpsOfATrainingStep) {
  PerfConfig c;
  c.model = "resnet_tiny";
  c.batch_size = 2;
  c.image_size = 16;
  c.num_classes = 10;
  c.steps = 2;
  c.warmup = 1;
  c.op_profile = true;
  const PerfResult r = measure_steps(c);
  const auto entries = by_name(r.op_profile);
  for (const char* op : {"conv2d", "batch_norm", "backward", "Adam.step"}) {
    ASSERT_EQ(entries.count(op), 1u) << op;
    EXPECT_GT(entries.at(op).calls, 0) << op;
  }
  EXPECT_EQ(entries.at("backward").calls, 2);  // one per timed step, none from the warm-up
  double self_ms = 0.0, window_ms = 0.0;
  for (const auto& e : r.op_profile) self_ms += e.self_ms;
  for (double ms : r.step_ms) window_ms += ms;
  EXPECT_LE(self_ms, window_ms * 1.0001 + 1e-3);  // self times never count anything twice
}

}  // namespace
}  // namespace ffr
