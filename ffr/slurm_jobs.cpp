#include "ffr/slurm_jobs.h"

#include "engine/error.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

namespace ffr {
namespace {

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

std::string slurm_dir(const std::string& out) { return (std::filesystem::path(out) / "slurm").string(); }

}  // namespace

int slurm_array_tasks(int runs, int requested) {
  return std::max(1, std::min({requested > 0 ? requested : kMaxSlurmArrayTasks, runs, kMaxSlurmArrayTasks}));
}

std::vector<std::string> sbatch_directives(const std::string& text) {
  if (text.find_first_of("'\"\\$`;|&<>\n") != std::string::npos) {
    throw InputError("'" + text + "': quotes, shell characters and line breaks are not supported in sbatch options; "
                     "give them as plain words, e.g. \"--partition=gpu --time=8:00:00\"");
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
      throw InputError("'" + w + "' is not an sbatch option (options start with -)");
    }
  }
  return lines;
}

std::string shell_quote(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string("-_./=:,+@%").find(c) != std::string::npos;
  });
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string grid_job_script(const std::vector<std::string>& command, int shards, const std::string& out,
                            const std::string& working_dir, const std::vector<std::string>& directives) {
  FFR_CHECK(shards >= 1 && !command.empty(), "grid_job_script: ", shards, " shards, ", command.size(), " words");
  std::string s = header("ffr-grid", slurm_dir(out) + "/shard-%a.log", working_dir, directives);
  s += detail::concat("#SBATCH --array=0-", shards - 1, "\n");
  s += detail::concat(
      "# Written by `ffr-bench grid --slurm`: task i runs shard i of ", shards,
      " into one --out folder; runs already complete there are skipped, so this script can be submitted again "
      "(after the last array has ended: squeue) to finish what a failed or timed-out task left. The shard count "
      "is written here rather than read from SLURM_ARRAY_TASK_COUNT so that a resubmission of some tasks only "
      "(sbatch --array=3,5 ...) keeps each task's shard.\n");
  s += "set -euo pipefail\n";
  s += detail::concat("exec ", joined(command), " --shard \"$SLURM_ARRAY_TASK_ID/", shards, "\"\n");
  return s;
}

std::string merge_job_script(const std::string& program, const std::string& out, const std::string& working_dir,
                             const std::vector<std::string>& directives) {
  std::string s = header("ffr-grid-merge", slurm_dir(out) + "/merge.log", working_dir, directives);
  s += "# Written by `ffr-bench grid --slurm`: the report over every shard's runs (submit it after grid.sbatch: "
       "sbatch --dependency=afterany:<job id> merge.sbatch).\n";
  s += "set -euo pipefail\n";
  s += "exec " + joined({program, "merge", "--out", out}) + "\n";
  return s;
}

}  // namespace ffr
