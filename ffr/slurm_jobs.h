// A grid as Slurm jobs (DESIGN.md: cluster launch lives beside the grid, not in the trainer): the
// text of a job-array script, one task per shard of the run list, each running the grid's own
// command with --shard i/N into one shared --out folder, and of a merge job over that folder.
// Slurm schedules; the grid's resume makes a resubmission skip the runs already complete.
// `ffr-bench grid --slurm` (bench/grid_slurm.h) writes and submits them.
#pragma once

#include <string>
#include <vector>

namespace ffr {

// Slurm's default MaxArraySize is 1001: arrays of up to 1000 tasks go anywhere.
inline constexpr int kMaxSlurmArrayTasks = 1000;

// Array tasks for `runs` runs: `requested` (0: one per run), never more than the runs or 1000.
int slurm_array_tasks(int runs, int requested);

// sbatch options ("--partition=gpu -p gpu --time=1:00:00") as #SBATCH lines, an option and its
// separate value kept together: {"--partition=gpu", "-p gpu", "--time=1:00:00"}. Quotes and shell
// characters are refused (InputError quoting the text): the lines go into a script verbatim.
std::vector<std::string> sbatch_directives(const std::string& sbatch_options);

// One word for a POSIX shell: unchanged when it is plain, else in single quotes.
std::string shell_quote(const std::string& word);

// The job array: `command` is the grid's command line (its program an absolute path) without
// --shard and without the options that made the scripts; task i appends --shard i/<shards>.
// Logs go to <out>/slurm/shard-<i>.log; jobs start in `working_dir`.
std::string grid_job_script(const std::vector<std::string>& command, int shards, const std::string& out,
                            const std::string& working_dir, const std::vector<std::string>& directives);

// `program merge --out <out>`, logging to <out>/slurm/merge.log.
std::string merge_job_script(const std::string& program, const std::string& out, const std::string& working_dir,
                             const std::vector<std::string>& directives);

}  // namespace ffr
