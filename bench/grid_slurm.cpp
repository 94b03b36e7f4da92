#include "bench/grid_slurm.h"

#include "bench/command.h"
#include "bench/command_line.h"
#include "engine/atomic_file.h"
#include "engine/error.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <sys/wait.h>

namespace ffr::bench {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxArrayTasks = 1000;  // Slurm's default MaxArraySize is 1001

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : " ") + shell_quote(w);
  return text;
}

std::string header(const std::string& job_name, const std::string& log, const std::string& working_dir,
                   const std::vector<std::string>& directives) {
  std::string s = "#!/bin/bash\n";
  s += "#SBATCH --job-name=" + job_name + "\n";
  s += "#SBATCH --output=" + log + "\n";
  s += "#SBATCH --chdir=" + working_dir + "\n";
  for (const std::string& d : directives) s += "#SBATCH " + d + "\n";
  return s;
}

// Runs `command` (through the shell, words quoted) and returns its standard output; Error naming
// `what` when it fails.
std::string run_command(const std::vector<std::string>& command, const std::string& what) {
  const std::string line = joined(command) + " 2>&1";
  std::FILE* pipe = ::popen(line.c_str(), "r");
  if (!pipe) throw Error(what + ": cannot run " + command.front());
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  if (status != 0) {
    const bool missing = WIFEXITED(status) && WEXITSTATUS(status) == 127;
    throw Error(detail::concat(what, ": `", line.substr(0, line.size() - 5), "` failed",
                               missing ? " (sbatch not found: is this a Slurm login node?)" : "",
                               output.empty() ? "" : ": " + output));
  }
  return output;
}

// sbatch --parsable prints "<job id>[;<cluster>]".
std::string job_id(const std::string& output) { return output.substr(0, output.find(';')); }

}  // namespace

void add_slurm_options(CLI::App& sub, SlurmOptions& o) {
  sub.add_flag("--slurm", o.enabled,
               "write Slurm job scripts to <out>/slurm/ (a job array, one task per shard, and a merge job after it) "
               "instead of running the grid here");
  sub.add_option("--slurm-opts", o.sbatch_options,
                 "with --slurm: sbatch options for both jobs, e.g. \"--partition=gpu --gres=gpu:1 --time=8:00:00\"");
  sub.add_option("--shards", o.shards, "with --slurm: array tasks, each a shard of the runs [one per run, at most 1000]")
      ->check(CLI::Range(1, kMaxArrayTasks));
  sub.add_flag("--submit", o.submit, "with --slurm: submit the jobs with sbatch and print their ids");
}

void check_slurm_options(const CLI::App& sub, const SlurmOptions& o) {
  if (!o.enabled) {
    for (const char* flag : {"--slurm-opts", "--shards", "--submit"}) {
      if (sub.count(flag) > 0) throw UsageError(std::string(flag) + ": needs --slurm");
    }
    return;
  }
  if (sub.count("--shard") > 0) throw UsageError("--shard: not with --slurm (each array task gets its own; see --shards)");
  if (sub.count("--grid-worker") > 0) throw UsageError("--slurm: not with --grid-worker");
  if (sub.count("--dry-run") > 0) throw UsageError("--slurm: not with --dry-run (--slurm without --submit only writes the scripts)");
  sbatch_directives(o.sbatch_options);  // checks the text
}

std::vector<std::string> sbatch_directives(const std::string& text) {
  if (text.find_first_of("'\"\\$`;|&<>\n") != std::string::npos) {
    throw UsageError("--slurm-opts: quotes, shell characters and line breaks are not supported (got '" + text +
                     "'); give sbatch options as plain words, e.g. \"--partition=gpu --time=8:00:00\"");
  }
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string w;
  while (words >> w) {
    if (w[0] == '-') {
      lines.push_back(w);
    } else if (!lines.empty() && lines.back().find_first_of(" =") == std::string::npos) {
      lines.back() += " " + w;  // the value of "-p gpu"
    } else {
      throw UsageError("--slurm-opts: '" + w + "' is not an sbatch option (options start with -)");
    }
  }
  return lines;
}

std::string grid_job_script(const std::vector<std::string>& command, int shards, const std::string& out,
                            const std::string& working_dir, const std::vector<std::string>& directives) {
  const std::string slurm_dir = (fs::path(out) / "slurm").string();
  std::string s = header("ffr-grid", slurm_dir + "/shard-%a.log", working_dir, directives);
  s += detail::concat("#SBATCH --array=0-", shards - 1, "\n");
  s += "# Written by `ffr-bench grid --slurm`: task i runs shard i of " + std::to_string(shards) +
       " into one --out folder; runs already complete there are skipped, so this script can be submitted "
       "again (after the last array has ended: squeue) to finish what a failed or timed-out task left. "
       "The shard count is written here rather than read from SLURM_ARRAY_TASK_COUNT so that a resubmission "
       "of some tasks only (sbatch --array=3,5 ...) keeps each task's shard.\n";
  s += "set -euo pipefail\n";
  s += detail::concat("exec ", joined(command), " --shard \"$SLURM_ARRAY_TASK_ID/", shards, "\"\n");
  return s;
}

std::string merge_job_script(const std::string& program, const std::string& out, const std::string& working_dir,
                             const std::vector<std::string>& directives) {
  const std::string slurm_dir = (fs::path(out) / "slurm").string();
  std::string s = header("ffr-grid-merge", slurm_dir + "/merge.log", working_dir, directives);
  s += "# Written by `ffr-bench grid --slurm`: the report over every shard's runs (submit it after grid.sbatch: "
       "sbatch --dependency=afterany:<job id> merge.sbatch).\n";
  s += "set -euo pipefail\n";
  s += "exec " + joined({program, "merge", "--out", out}) + "\n";
  return s;
}

void write_slurm_jobs(const SlurmOptions& o, const Grid& grid, const std::string& out) {
  const int runs = int(plan_runs(grid).size());
  const int shards = std::max(1, std::min(o.shards > 0 ? o.shards : kMaxArrayTasks, runs));
  const std::string abs_out = fs::absolute(out).lexically_normal().string();
  const std::string working_dir = fs::current_path().string();
  const std::vector<std::string> directives = sbatch_directives(o.sbatch_options);
  std::vector<std::string> command =
      without_flags(own_command_line(), {"--slurm-opts", "--shards", "--shard"}, {"--slurm", "--submit"});
  command[0] = own_executable();

  const fs::path slurm_dir = fs::path(abs_out) / "slurm";
  fs::create_directories(slurm_dir);
  const std::string grid_script = (slurm_dir / "grid.sbatch").string();
  const std::string merge_script = (slurm_dir / "merge.sbatch").string();
  write_text_atomically(grid_script, grid_job_script(command, shards, abs_out, working_dir, directives));
  write_text_atomically(merge_script, merge_job_script(command[0], abs_out, working_dir, directives));
  std::printf("slurm: %d runs in %d array tasks\n  %s\n  %s\n", runs, shards, grid_script.c_str(), merge_script.c_str());
  if (!o.submit) {
    std::printf("submit with:\n  id=$(sbatch --parsable %s)\n  sbatch --dependency=afterany:$id %s\n",
                shell_quote(grid_script).c_str(), shell_quote(merge_script).c_str());
    return;
  }
  const std::string array_id = job_id(run_command({"sbatch", "--parsable", grid_script}, "--submit"));
  const std::string merge_id = job_id(
      run_command({"sbatch", "--parsable", "--dependency=afterany:" + array_id, merge_script}, "--submit"));
  std::printf("submitted: job array %s (%d tasks), merge job %s (after it)\n", array_id.c_str(), shards,
              merge_id.c_str());
  std::printf("report when done: %s/report.md (logs in %s)\n", abs_out.c_str(), slurm_dir.string().c_str());
}

}  // namespace ffr::bench
