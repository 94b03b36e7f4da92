// Which cuDNN algorithm runs a convolution: the choice, its cache, and the rule that picks it from
// cuDNN's candidates. No CUDA types here, so the logic is tested on any machine
// (tests/conv_algorithm_cache_test.cpp); kernels/conv2d.cu asks cuDNN for the candidates.
//
// Two ways to get candidates (like PyTorch's torch.backends.cudnn.benchmark):
//  - timed search (benchmark on, the default): cudnnFind*Ex runs every algorithm once on the
//    problem and reports its time. It costs one host synchronisation and a few milliseconds per
//    new convolution shape, paid on the first step that meets the shape; later steps reuse the
//    choice. FFR_CUDNN_BENCHMARK=0 (or set_cudnn_benchmark(false)) turns it off.
//  - heuristics (benchmark off): cudnnGet*_v7 ranks the algorithms without running anything.
// Either way the choice is cached process-wide, keyed by everything that changes it: pass, device,
// data type, memory layout, math (TF32 allowed or not), determinism, benchmark mode and every size.
#pragma once

#include "engine/allocator.h"
#include "engine/dtype.h"
#include "engine/settings.h"
#include "kernels/conv2d.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ffr {

enum class ConvPass : int8_t { Forward, BackwardData, BackwardFilter };
const char* conv_pass_name(ConvPass pass);

// The cache key: a flat array so ordering and equality are plain array comparisons.
struct ConvAlgorithmKey {
  std::array<int64_t, 23> fields{};
  bool operator<(const ConvAlgorithmKey& o) const { return fields < o.fields; }
  bool operator==(const ConvAlgorithmKey& o) const { return fields == o.fields; }
  std::string str() const;  // for error messages and logs
};

ConvAlgorithmKey conv_algorithm_key(ConvPass pass, int device, DType dtype, ConvLayout layout, const Conv2dGeometry& g,
                                    const Settings& settings, bool benchmark);

// One algorithm cuDNN offers for a problem, in cuDNN's own order (heuristic rank, or time).
struct ConvCandidate {
  int algorithm = 0;          // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  int math = 0;               // the cudnnMathType_t to run it with
  bool ok = false;            // cuDNN's status for it was success (and its workspace size known)
  bool deterministic = false;
  size_t workspace_bytes = 0;
  float milliseconds = -1.0f;  // measured by a timed search; < 0 for a heuristic rank
};

struct ConvAlgorithmChoice {
  int algorithm = 0;
  int math = 0;
  size_t workspace_bytes = 0;
  float milliseconds = -1.0f;  // the search's time for it; < 0 when chosen by heuristics
};

// The candidate to run: among those that are ok, deterministic when `deterministic`, and within
// `max_workspace_bytes`, the fastest measured one if any were timed, else the first in rank order.
// ffr::Error naming the pass and the key when none qualifies.
ConvAlgorithmChoice pick_conv_algorithm(const std::vector<ConvCandidate>& candidates, bool deterministic,
                                        size_t max_workspace_bytes, const ConvAlgorithmKey& key);

// Process-wide: a timed search is too costly to repeat in every thread. Thread-safe. The search
// runs outside the lock (it can take milliseconds); if two threads search the same key at once,
// the first to finish wins and both use its choice.
class ConvAlgorithmCache {
 public:
  // The cached choice for `key`, or `choose()`'s result, stored first.
  ConvAlgorithmChoice get_or_choose(const ConvAlgorithmKey& key, const std::function<ConvAlgorithmChoice()>& choose);
  std::optional<ConvAlgorithmChoice> find(const ConvAlgorithmKey& key) const;
  size_t size() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::map<ConvAlgorithmKey, ConvAlgorithmChoice> choices_;
};

ConvAlgorithmCache& conv_algorithm_cache();

// Scratch for a timed search: `bytes` from `allocator` (the CUDA caching allocator; never
// cudaMalloc), halved after each OutOfMemoryError down to nothing. The search then skips the
// algorithms that need more than it got. Returned to the allocator on destruction.
class SearchWorkspace {
 public:
  SearchWorkspace(Allocator& allocator, size_t bytes);
  ~SearchWorkspace();
  SearchWorkspace(const SearchWorkspace&) = delete;
  SearchWorkspace& operator=(const SearchWorkspace&) = delete;

  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  Allocator& allocator_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Timed search on or off. Default: on, unless FFR_CUDNN_BENCHMARK is "0" (read once; "1" is on;
// anything else is an ffr::Error naming the variable). set_cudnn_benchmark overrides both for the
// process.
bool cudnn_benchmark();
void set_cudnn_benchmark(std::optional<bool> on);
// The parsing rule of FFR_CUDNN_BENCHMARK (exposed for tests): null or "" is `fallback`.
bool parse_cudnn_benchmark(const char* value, bool fallback);

}  // namespace ffr
