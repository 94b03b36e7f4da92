// `grid --processes N` and `grid --devices 0,1,...`: the grid's runs spread over worker processes
// on this machine, one per GPU (or per group of CPU cores). Each worker is this same command line
// started again with --grid-worker, which runs ffr/grid_workers.h's claiming loop on the same
// --out folder; this process only starts them, shows progress, waits, and then writes the report
// as a one-worker grid would.
#pragma once

#include "ffr/grid.h"

#include <functional>
#include <string>
#include <vector>

namespace ffr::bench {

struct WorkerPlan {
  int processes = 0;                 // --processes: CPU workers (0: none asked)
  std::vector<int> devices;          // --devices: CUDA devices, one worker each (times per_device)
  int per_device = 1;                // --workers-per-device
  int threads = 0;                   // --threads as given (0: the cores split between CPU workers)
};

// Parses --devices' text ("0,1,3"); UsageError naming the flag.
std::vector<int> parse_devices(const std::string& text);

// Checks the plan against this build and machine (UsageError naming the flag).
void check_worker_plan(const WorkerPlan& plan);

// This process's share of the runs as the folder stands now (planned again as FFR stage-1 searches
// complete: their stage-2 runs get their names then).
using RunPlanner = std::function<std::vector<GridRun>()>;

struct WorkersOutcome {
  double seconds = 0.0;  // wall time
  int64_t pending = 0;   // stage-2 runs still waiting for another shard's stage-1 search
};

// Starts the workers, prints progress until they have all exited, and throws when a run that
// could run is still missing then (naming the workers that failed and their logs under
// <out>/workers/).
WorkersOutcome run_worker_processes(const WorkerPlan& plan, const RunPlanner& runs, const std::string& out);

}  // namespace ffr::bench
