#include "engine/op_profile.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

namespace ffr {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> recording{false};
std::mutex totals_mutex;
std::map<std::string, OpProfileEntry>& totals() {
  static std::map<std::string, OpProfileEntry> t;
  return t;
}

struct OpenRange {
  const char* name;
  Clock::time_point start;
  double child_ms;
};
thread_local std::vector<OpenRange> open_ranges;

}  // namespace

void start_op_profile() {
  std::lock_guard<std::mutex> lock(totals_mutex);
  totals().clear();
  recording.store(true, std::memory_order_relaxed);
}

std::vector<OpProfileEntry> stop_op_profile() {
  recording.store(false, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(totals_mutex);
  std::vector<OpProfileEntry> out;
  for (auto& [name, entry] : totals()) out.push_back(entry);
  std::sort(out.begin(), out.end(), [](const OpProfileEntry& a, const OpProfileEntry& b) {
    return a.self_ms != b.self_ms ? a.self_ms > b.self_ms : a.name < b.name;
  });
  return out;
}

bool op_profile_on() { return recording.load(std::memory_order_relaxed); }

namespace detail {

void op_profile_push(const char* name) { open_ranges.push_back({name, Clock::now(), 0.0}); }

void op_profile_pop() {
  if (open_ranges.empty()) return;
  const OpenRange range = open_ranges.back();
  open_ranges.pop_back();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - range.start).count();
  if (!open_ranges.empty()) open_ranges.back().child_ms += ms;
  std::lock_guard<std::mutex> lock(totals_mutex);
  OpProfileEntry& entry = totals()[range.name];
  if (entry.name.empty()) entry.name = range.name;
  entry.calls += 1;
  entry.total_ms += ms;
  entry.self_ms += ms - range.child_ms;
}

}  // namespace detail
}  // namespace ffr
