#include "kernels/conv_algorithm_cache.h"

#include "engine/error.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace ffr {

const char* conv_pass_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::Forward: return "forward";
    case ConvPass::BackwardData: return "backward-data";
    case ConvPass::BackwardFilter: return "backward-filter";
  }
  return "?";
}

ConvAlgorithmKey conv_algorithm_key(ConvPass pass, int device, DType dtype, ConvLayout layout, const Conv2dGeometry& g,
                                    const Settings& settings, bool benchmark) {
  ConvAlgorithmKey key;
  key.fields = {int64_t(pass),      device,           int64_t(dtype),     int64_t(layout),
                settings.allow_tf32, settings.deterministic, benchmark,   g.batch,
                g.in_channels,      g.in_height,      g.in_width,         g.out_channels,
                g.kernel_height,    g.kernel_width,   g.stride_height,    g.stride_width,
                g.pad_height,       g.pad_width,      g.dilation_height,  g.dilation_width,
                g.groups,           g.out_height,     g.out_width};
  return key;
}

std::string ConvAlgorithmKey::str() const {
  const auto& f = fields;
  return detail::concat(conv_pass_name(ConvPass(f[0])), " on cuda:", f[1], ", ", dtype_name(DType(f[2])),
                        f[3] == int64_t(ConvLayout::NHWC) ? " NHWC" : " NCHW", f[4] ? ", TF32" : "",
                        f[5] ? ", deterministic" : "", f[6] ? ", timed search" : ", heuristics", ": x [", f[7], ", ",
                        f[8], ", ", f[9], ", ", f[10], "], w [", f[11], ", ", f[8] / f[20], ", ", f[12], ", ", f[13],
                        "], stride ", f[14], "x", f[15], ", pad ", f[16], "x", f[17], ", dilation ", f[18], "x", f[19],
                        ", groups ", f[20]);
}

ConvAlgorithmChoice pick_conv_algorithm(const std::vector<ConvCandidate>& candidates, bool deterministic,
                                        size_t max_workspace_bytes, const ConvAlgorithmKey& key) {
  const ConvCandidate* best = nullptr;
  for (const ConvCandidate& c : candidates) {
    if (!c.ok || (deterministic && !c.deterministic) || c.workspace_bytes > max_workspace_bytes) continue;
    if (best == nullptr) {
      best = &c;
      continue;
    }
    // Timed candidates: the fastest (cuDNN sorts them by time, but do not rely on it). A measured
    // time beats a rank. Untimed ones keep their rank order.
    if (c.milliseconds >= 0.0f && (best->milliseconds < 0.0f || c.milliseconds < best->milliseconds)) best = &c;
  }
  FFR_CHECK(best != nullptr, "cuDNN offers no usable algorithm for this convolution (", key.str(), "; ",
            candidates.size(), " candidate(s)", deterministic ? ", deterministic ones only" : "",
            ", workspace cap ", max_workspace_bytes, " bytes)");
  ConvAlgorithmChoice choice;
  choice.algorithm = best->algorithm;
  choice.math = best->math;
  choice.workspace_bytes = best->workspace_bytes;
  choice.milliseconds = best->milliseconds;
  return choice;
}

ConvAlgorithmChoice ConvAlgorithmCache::get_or_choose(const ConvAlgorithmKey& key,
                                                      const std::function<ConvAlgorithmChoice()>& choose) {
  if (std::optional<ConvAlgorithmChoice> cached = find(key)) return *cached;
  const ConvAlgorithmChoice chosen = choose();
  std::lock_guard<std::mutex> lock(mutex_);
  return choices_.emplace(key, chosen).first->second;  // an earlier finisher's choice stays
}

std::optional<ConvAlgorithmChoice> ConvAlgorithmCache::find(const ConvAlgorithmKey& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = choices_.find(key);
  if (it == choices_.end()) return std::nullopt;
  return it->second;
}

size_t ConvAlgorithmCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return choices_.size();
}

void ConvAlgorithmCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  choices_.clear();
}

ConvAlgorithmCache& conv_algorithm_cache() {
  static ConvAlgorithmCache cache;
  return cache;
}

SearchWorkspace::SearchWorkspace(Allocator& allocator, size_t bytes) : allocator_(allocator) {
  while (bytes > 0) {
    try {
      ptr_ = allocator_.allocate(bytes);
      bytes_ = bytes;
      return;
    } catch (const OutOfMemoryError&) {
      bytes /= 2;
    }
  }
}

SearchWorkspace::~SearchWorkspace() {
  if (ptr_ != nullptr) allocator_.deallocate(ptr_, bytes_);
}

bool parse_cudnn_benchmark(const char* value, bool fallback) {
  if (value == nullptr || value[0] == '\0') return fallback;
  if (std::strcmp(value, "1") == 0) return true;
  if (std::strcmp(value, "0") == 0) return false;
  throw InputError(detail::concat("FFR_CUDNN_BENCHMARK: expected 0 or 1, got '", value, "'"));
}

namespace {
// -1: not overridden; else 0/1.
std::atomic<int> benchmark_override{-1};
}  // namespace

bool cudnn_benchmark() {
  const int o = benchmark_override.load();
  if (o >= 0) return o == 1;
  static const bool from_environment = parse_cudnn_benchmark(std::getenv("FFR_CUDNN_BENCHMARK"), true);
  return from_environment;
}

void set_cudnn_benchmark(std::optional<bool> on) { benchmark_override.store(on ? int(*on) : -1); }

}  // namespace ffr
