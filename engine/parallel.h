// Threads for the CPU kernels: one OpenMP pool, shared with OpenBLAS (the build links
// OpenBLAS's OpenMP variant), so GEMMs and our own loops never spin against each other.
//
//   parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) { for (i = begin; i < end; ++i) ... });
//   double s = parallel_sum<double>(0, n, 16384, [&](int64_t begin, int64_t end) { ... return partial; });
//
// Results never depend on the thread count:
// - parallel_for hands out disjoint ranges; a body that writes each index from that index alone
//   gives the same bits however the range is cut.
// - parallel_sum cuts [begin, end) into chunks of exactly `grain` (the last may be shorter),
//   whatever the thread count, and adds the chunks' partials in chunk order on the calling
//   thread. 1 thread or 64: the same chunks, the same order, the same bits.
//
// Small ranges (under 2 * grain) run on the calling thread: a parallel region costs a few
// microseconds, more than a small kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ffr {

// The machine's cores as this process may use them (sched_getaffinity; at least 1).
int machine_cores();

// Threads the CPU kernels (and OpenBLAS) use. Starts at machine_cores() (or OMP_NUM_THREADS when
// set); set_compute_threads(0) goes back to machine_cores().
int compute_threads();
void set_compute_threads(int threads);

// A non-owning reference to a callable(int64_t, int64_t): no allocation per call.
class RangeFunction {
 public:
  template <typename F>
  RangeFunction(F& f)  // NOLINT: implicit on purpose, from a lambda
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, int64_t b, int64_t e) { (*static_cast<F*>(o))(b, e); }) {}
  void operator()(int64_t begin, int64_t end) const { call_(object_, begin, end); }

 private:
  void* object_;
  void (*call_)(void*, int64_t, int64_t);
};

namespace detail {
void parallel_for_impl(int64_t begin, int64_t end, int64_t grain, RangeFunction fn);
// Runs fn(k) for every chunk k in [0, chunks), in parallel.
void parallel_chunks_impl(int64_t chunks, RangeFunction fn);
bool run_serially(int64_t begin, int64_t end, int64_t grain);
}  // namespace detail

// fn(chunk_begin, chunk_end) over disjoint ranges covering [begin, end), each at least `grain`
// long (except where the range is shorter), in parallel when the range is long enough.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& fn) {
  if (end <= begin) return;
  if (detail::run_serially(begin, end, grain)) {
    fn(begin, end);
    return;
  }
  detail::parallel_for_impl(begin, end, grain, RangeFunction(fn));
}

// Deterministic reduction: chunk(chunk_begin, chunk_end) -> T over fixed chunks of `grain`,
// combined left to right with `combine` (default +), starting from `init`.
template <typename T, typename Chunk, typename Combine>
T parallel_reduce(int64_t begin, int64_t end, int64_t grain, T init, Chunk&& chunk, Combine&& combine) {
  if (end <= begin) return init;
  if (grain < 1) grain = 1;
  const int64_t chunks = (end - begin + grain - 1) / grain;
  if (chunks == 1) return combine(init, chunk(begin, end));
  std::vector<T> partials(static_cast<size_t>(chunks), init);
  auto body = [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; ++k) {
      const int64_t b = begin + k * grain;
      const int64_t e = b + grain < end ? b + grain : end;
      partials[static_cast<size_t>(k)] = chunk(b, e);
    }
  };
  detail::parallel_chunks_impl(chunks, RangeFunction(body));
  T result = init;
  for (const T& p : partials) result = combine(result, p);
  return result;
}

template <typename T, typename Chunk>
T parallel_sum(int64_t begin, int64_t end, int64_t grain, Chunk&& chunk) {
  return parallel_reduce<T>(begin, end, grain, T(0), std::forward<Chunk>(chunk),
                            [](const T& a, const T& b) { return a + b; });
}

// Grains for elementwise loops (elements per chunk): below 2x this, a loop runs serially.
constexpr int64_t kElementwiseGrain = 32768;

// Grain for a loop over `rows` of `row_cost` elements each: enough rows that a chunk holds
// about kElementwiseGrain elements.
inline int64_t rows_grain(int64_t row_cost) {
  return row_cost >= kElementwiseGrain ? 1 : (kElementwiseGrain + row_cost - 1) / (row_cost < 1 ? 1 : row_cost);
}

}  // namespace ffr
