// `grid --slurm`: writes <out>/slurm/grid.sbatch (a job array, one task per shard of the runs, each
// running this same grid command with --shard i/N into the same --out folder) and
// <out>/slurm/merge.sbatch (`ffr-bench merge` over that folder), as ffr/slurm_jobs.h words them;
// with --submit, submits both, the merge job after the array (afterany, so a report is written even
// when a task failed; merge marks the rows that miss runs), and prints the job ids.
#pragma once

#include "ffr/grid.h"

#include <CLI/CLI.hpp>

#include <string>

namespace ffr::bench {

struct SlurmOptions {
  bool enabled = false;        // --slurm
  std::string sbatch_options;  // --slurm-opts: e.g. "--partition=gpu --gres=gpu:1 --time=8:00:00"
  int shards = 0;              // --shards: array tasks (0: one per run, at most 1000)
  bool submit = false;         // --submit
};

void add_slurm_options(CLI::App& sub, SlurmOptions& options);

// Flags that need --slurm, flags --slurm sets itself, and --slurm-opts' text (UsageError naming the flag).
void check_slurm_options(const CLI::App& sub, const SlurmOptions& options);

// Writes the scripts for this process's grid command and, with --submit, submits them.
void write_slurm_jobs(const SlurmOptions& options, const Grid& grid, const std::string& out);

}  // namespace ffr::bench
