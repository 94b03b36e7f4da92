// `grid --slurm`: the grid as Slurm jobs. Writes <out>/slurm/grid.sbatch (a job array, one task per
// shard, each running this same grid command with --shard i/N into the same --out folder) and
// <out>/slurm/merge.sbatch (`ffr-bench merge` over that folder); with --submit, submits both, the
// merge job after the array (afterany, so a report is written even when a shard failed; merge
// marks its missing runs), and prints the job ids. Slurm does the scheduling; a resubmission
// skips the runs already complete (the grid resumes).
#pragma once

#include "ffr/grid.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace ffr::bench {

struct SlurmOptions {
  bool enabled = false;   // --slurm
  std::string sbatch_options;  // --slurm-opts: e.g. "--partition=gpu --gres=gpu:1 --time=8:00:00"
  int shards = 0;         // --shards: array tasks (0: one per run, at most 1000)
  bool submit = false;    // --submit
};

void add_slurm_options(CLI::App& sub, SlurmOptions& options);

// Flags that need --slurm, flags --slurm sets itself, and --slurm-opts' text (UsageError naming the flag).
void check_slurm_options(const CLI::App& sub, const SlurmOptions& options);

// --slurm-opts as #SBATCH lines: "-p gpu --time=1:00:00" -> {"-p gpu", "--time=1:00:00"}.
std::vector<std::string> sbatch_directives(const std::string& sbatch_options);

// The two job scripts' text (exposed for tests): `command` is the grid's command line without the
// Slurm flags and without --shard, its program an absolute path.
std::string grid_job_script(const std::vector<std::string>& command, int shards, const std::string& out,
                            const std::string& working_dir, const std::vector<std::string>& directives);
std::string merge_job_script(const std::string& program, const std::string& out, const std::string& working_dir,
                             const std::vector<std::string>& directives);

// Writes the scripts for this process's grid command and, with --submit, submits them.
void write_slurm_jobs(const SlurmOptions& options, const Grid& grid, const std::string& out);

}  // namespace ffr::bench
