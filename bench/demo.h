// The default demo, what `ffr-bench` with no arguments runs (DESIGN.md): builds a small Spurious
// Fashion-MNIST if it is missing, trains None / USB / ASB / FFR with ERM at bias ratio 0.99 on a
// model sized for the machine, prints the WA/BA table and writes a report.
#pragma once

namespace ffr::bench {

// Returns the process exit code. Output goes under ./out/ (data set, run folders, report.md).
int run_demo();

}  // namespace ffr::bench
