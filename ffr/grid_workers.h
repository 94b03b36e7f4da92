// One grid, several worker processes (`grid --processes N`, `--devices 0,1,...`, or shards on
// several machines sharing one folder): each worker runs run_grid_worker on the same folder and
// takes runs through claim files (ffr/run_claim.h), so no run is done twice, and a run whose
// worker died is taken over by the next worker that passes it. Results are the run folders
// themselves, so the report is the same whoever ran each run.
#pragma once

#include "ffr/grid.h"

#include <string>
#include <vector>

namespace ffr {

struct GridWorkerSummary {
  GridRunSummary runs;                  // ran: by this worker; resumed: found complete at the start
  std::vector<std::string> held_elsewhere;  // runs left to live workers on other hosts: "<run dir> (host pid N)"
};

// Runs this shard's runs, claiming each first, until every run is complete, held by a worker on
// another host (whose state cannot be checked from here) or pending (a stage-2 run waiting for a
// stage-1 search of another shard). Runs held by a live worker on this host
// are waited for (passing over the list every `poll_seconds`), so that a worker that dies has its
// run taken over by one still running. Errors as run_grid.
GridWorkerSummary run_grid_worker(const Grid& grid, const GridRunOptions& options, const RunFunction& run,
                                  const GridProgressCallback& progress = {}, double poll_seconds = 1.0);

}  // namespace ffr
