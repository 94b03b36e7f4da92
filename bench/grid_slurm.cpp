#include "bench/grid_slurm.h"

#include "bench/command.h"
#include "bench/command_line.h"
#include "engine/atomic_file.h"
#include "engine/error.h"
#include "ffr/slurm_jobs.h"

#include <cstdio>
#include <filesystem>

#include <sys/wait.h>

namespace ffr::bench {
namespace {

namespace fs = std::filesystem;

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : " ") + shell_quote(w);
  return text;
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
                 "with --slurm: sbatch options for both jobs, written with '=' as they start with a dash: "
                 "--slurm-opts=\"--partition=gpu --gres=gpu:1 --time=8:00:00\"");
  sub.add_option("--shards", o.shards, "with --slurm: array tasks, each a shard of the runs [one per run, at most 1000]")
      ->check(CLI::Range(1, kMaxSlurmArrayTasks));
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
  try {
    sbatch_directives(o.sbatch_options);  // checks the text
  } catch (const InputError& e) {
    throw UsageError(std::string("--slurm-opts: ") + e.what());
  }
}

void write_slurm_jobs(const SlurmOptions& o, const Grid& grid, const std::string& out) {
  const int runs = int(plan_runs(grid).size());
  const int shards = slurm_array_tasks(runs, o.shards);
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
