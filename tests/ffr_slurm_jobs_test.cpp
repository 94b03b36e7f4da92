// ffr/slurm_jobs: the job scripts' text, the sbatch options as #SBATCH lines, shell quoting and
// the array size. The scripts running on a real Slurm: tests/slurm_grid.sh.
#include "data_test_support.h"
#include "ffr/slurm_jobs.h"

#include <gtest/gtest.h>

namespace ffr {
namespace {

using data::testing::expect_input_error;

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(SlurmJobs, SbatchOptionsBecomeDirectivesWithTheirValues) {
  EXPECT_EQ(sbatch_directives("--partition=gpu -p debug --time=1:00:00 -N 1"),
            (std::vector<std::string>{"--partition=gpu", "-p debug", "--time=1:00:00", "-N 1"}));
  EXPECT_TRUE(sbatch_directives("  ").empty());
  expect_input_error([] { sbatch_directives("--comment='a b'"); }, {"quotes"});
  expect_input_error([] { sbatch_directives("--x=1; rm -rf /"); }, {"shell characters"});
  expect_input_error([] { sbatch_directives("gpu"); }, {"'gpu' is not an sbatch option"});
}

TEST(SlurmJobs, ShellQuotingKeepsPlainWordsAndQuotesTheRest) {
  EXPECT_EQ(shell_quote("--lr=1e-3,1e-4"), "--lr=1e-3,1e-4");
  EXPECT_EQ(shell_quote("data/sev{severity}/manifest.csv"), "'data/sev{severity}/manifest.csv'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(SlurmJobs, ArrayTasksAreCappedByRunsAndSlurmsDefaultLimit) {
  EXPECT_EQ(slurm_array_tasks(8, 0), 8);
  EXPECT_EQ(slurm_array_tasks(8, 3), 3);
  EXPECT_EQ(slurm_array_tasks(2, 5), 2);
  EXPECT_EQ(slurm_array_tasks(5000, 0), kMaxSlurmArrayTasks);
  EXPECT_EQ(slurm_array_tasks(0, 0), 1);
}

TEST(SlurmJobs, ScriptsRunEachShardIntoOneFolderThenMergeIt) {
  const std::string grid = grid_job_script({"/opt/ffr-bench", "grid", "--preset", "figure3", "--out", "out dir"}, 4,
                                           "/shared/out", "/home/me", {"-p gpu", "--time=1:00:00"});
  EXPECT_EQ(grid.rfind("#!/bin/bash\n", 0), 0u);
  EXPECT_TRUE(has_line(grid, "#SBATCH --array=0-3"));
  EXPECT_TRUE(has_line(grid, "#SBATCH --output=/shared/out/slurm/shard-%a.log"));
  EXPECT_TRUE(has_line(grid, "#SBATCH --chdir=/home/me"));
  EXPECT_TRUE(has_line(grid, "#SBATCH -p gpu"));
  EXPECT_TRUE(has_line(grid, "#SBATCH --time=1:00:00"));
  EXPECT_TRUE(has_line(grid, "exec /opt/ffr-bench grid --preset figure3 --out 'out dir' --shard \"$SLURM_ARRAY_TASK_ID/4\""));
  const std::string merge = merge_job_script("/opt/ffr-bench", "/shared/out", "/home/me", {"-p gpu"});
  EXPECT_TRUE(has_line(merge, "#SBATCH --output=/shared/out/slurm/merge.log"));
  EXPECT_TRUE(has_line(merge, "#SBATCH -p gpu"));
  EXPECT_TRUE(has_line(merge, "exec /opt/ffr-bench merge --out /shared/out"));
}

}  // namespace
}  // namespace ffr
