#include "engine/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

// OpenBLAS's own knob (cblas.h declares it; not every cblas.h does, so declared here). The build
// links the OpenMP variant, where it sets the threads of the same OpenMP pool ours run on.
extern "C" void openblas_set_num_threads(int num_threads) __attribute__((weak));

namespace ffr {

namespace {

int initial_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return machine_cores();
}

std::atomic<int>& threads_setting() {
  static std::atomic<int> threads{initial_threads()};
  return threads;
}

}  // namespace

int machine_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

int compute_threads() { return threads_setting().load(std::memory_order_relaxed); }

void set_compute_threads(int threads) {
  const int n = threads > 0 ? threads : machine_cores();
  threads_setting().store(n, std::memory_order_relaxed);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(n);
}

namespace detail {

bool run_serially(int64_t begin, int64_t end, int64_t grain) {
  if (grain < 1) grain = 1;
#ifdef _OPENMP
  // Inside another parallel region (a kernel called from a parallel loop) stay on this thread.
  return end - begin < 2 * grain || compute_threads() <= 1 || omp_in_parallel();
#else
  return true;
#endif
}

void parallel_for_impl(int64_t begin, int64_t end, int64_t grain, RangeFunction fn) {
  if (grain < 1) grain = 1;
  const int64_t max_chunks = (end - begin) / grain;
  const int threads = static_cast<int>(std::min<int64_t>(compute_threads(), std::max<int64_t>(max_chunks, 1)));
  if (threads <= 1) {
    fn(begin, end);
    return;
  }
  // One contiguous range per thread: the cheapest split, and any split gives the same bits.
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t length = end - begin;
    const int64_t b = begin + length * t / nt, e = begin + length * (t + 1) / nt;
    if (b < e) fn(b, e);
  }
#else
  fn(begin, end);
#endif
}

void parallel_chunks_impl(int64_t chunks, RangeFunction fn) {
  const int threads = static_cast<int>(std::min<int64_t>(compute_threads(), chunks));
#ifdef _OPENMP
  if (threads > 1 && !omp_in_parallel()) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t k = 0; k < chunks; ++k) fn(k, k + 1);
    return;
  }
#endif
  fn(0, chunks);
}

}  // namespace detail

}  // namespace ffr
