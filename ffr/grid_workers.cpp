#include "ffr/grid_workers.h"

#include "engine/error.h"
#include "ffr/experiment.h"
#include "ffr/run_claim.h"

#include <chrono>
#include <set>
#include <thread>

namespace ffr {

GridWorkerSummary run_grid_worker(const Grid& grid, const GridRunOptions& options, const RunFunction& run,
                                  const GridProgressCallback& progress, double poll_seconds) {
  const auto start = std::chrono::steady_clock::now();
  GridWorkerSummary summary;
  std::set<std::string> foreign;  // this pass's runs held on other hosts
  GridRunOptions claiming = options;
  claiming.claim = [&foreign](const GridRun&, const std::string& dir) -> std::shared_ptr<void> {
    ClaimHolder holder;
    std::shared_ptr<RunClaim> claim = try_claim(dir, &holder);
    if (!claim) {
      if (holder.host != this_process().host) {
        foreign.insert(detail::concat(dir, " (host ", holder.host, " pid ", holder.pid, ")"));
      }
      return nullptr;
    }
    // Another worker may have finished it between run_grid's look and our claim.
    if (has_result(dir)) return nullptr;
    return claim;
  };
  // Later passes only report runs done here; the first one also counts those found complete.
  bool first_pass = true;
  GridProgressCallback quiet = [&](const GridProgress& p) {
    if (progress && (first_pass || p.event != GridProgress::Event::Resumed)) progress(p);
  };
  for (;;) {
    foreign.clear();
    const GridRunSummary pass = run_grid(grid, claiming, run, quiet);
    if (first_pass) {
      summary.runs.runs = pass.runs;
      summary.runs.resumed = pass.resumed;
    }
    first_pass = false;
    summary.runs.ran += pass.ran;
    summary.runs.pending = pass.pending;  // stage-2 runs waiting for another shard's stage-1 search
    // Done when no live worker on this host holds a run; a pass that ran something while stage-2
    // runs were pending goes again, since its runs may have completed their stage-1 search.
    const bool may_unblock = pass.ran > 0 && pass.pending > 0;
    if (pass.held_elsewhere == int64_t(foreign.size()) && !may_unblock) {
      summary.held_elsewhere.assign(foreign.begin(), foreign.end());
      break;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(poll_seconds));
  }
  summary.runs.held_elsewhere = int64_t(summary.held_elsewhere.size());
  summary.runs.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace ffr
