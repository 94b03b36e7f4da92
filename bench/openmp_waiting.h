// How the CPU kernels' OpenMP threads wait between parallel loops, chosen once as ffr-bench starts.
#pragma once

namespace ffr::bench {

// libgomp reads OMP_WAIT_POLICY only when it loads, so this runs first in main() and, where it
// picks passive waiting, starts the program again with OMP_WAIT_POLICY=PASSIVE (execv of
// /proc/self/exe; on failure it goes on as it is). A policy the user set is always kept.
//
// Why it depends on the machine (2-core development machine, resnet50 inference, batch 1, 224 px,
// median ms per step): quiet, libgomp's default (spin a while, then sleep) 44 ms against 72 ms
// passive, since each of the ~200 parallel loops of a forward pass would otherwise wake a sleeping
// thread; with one other busy process, 151 ms spinning against 95 ms passive, since a spinning
// thread takes the core the other process needs and the loop waits for both. Under heavy load
// (ctest -j2, builds) spinning made a ResNet-50 training step 8x slower. So: passive when another
// task is runnable at start (sampled from /proc/loadavg), else libgomp's default.
// Programs that embed the library choose for themselves (set OMP_WAIT_POLICY; README).
void choose_openmp_waiting(char** argv);

}  // namespace ffr::bench
