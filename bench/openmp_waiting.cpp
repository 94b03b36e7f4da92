#include "bench/openmp_waiting.h"

#include "engine/parallel.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace ffr::bench {
namespace {

// Runnable tasks on the machine besides this one: /proc/loadavg's "running/total" field counts
// the reader itself. -1 when it cannot be read.
int other_runnable_tasks() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return -1;
  double one, five, fifteen;
  int running = 0, total = 0;
  const int got = std::fscanf(f, "%lf %lf %lf %d/%d", &one, &five, &fifteen, &running, &total);
  std::fclose(f);
  return got == 5 ? std::max(running - 1, 0) : -1;
}

// Busy: another task was runnable in each of three samples 5 ms apart (one sample could catch a
// passing shell or daemon), so a core the compute threads would spin on is wanted elsewhere.
bool machine_is_busy() {
  int fewest = 1 << 30;
  for (int i = 0; i < 3; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const int others = other_runnable_tasks();
    if (others < 0) return true;  // unknown: the safe choice
    fewest = std::min(fewest, others);
  }
  // With fewer compute threads than cores, the spare cores absorb the others.
  return fewest > machine_cores() - compute_threads();
}

}  // namespace

void choose_openmp_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (!machine_is_busy()) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: go on as we are
}

}  // namespace ffr::bench
