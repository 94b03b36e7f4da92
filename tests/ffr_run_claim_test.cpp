// ffr/run_claim and ffr/grid_workers: claim files (atomic, stale ones taken over, bad ones named)
// and workers sharing one grid folder, each run done exactly once. Runs go through a fake run
// function, so nothing here trains.
#include "data_test_support.h"
#include "engine/atomic_file.h"
#include "ffr/experiment_json.h"
#include "ffr/grid_workers.h"
#include "ffr/run_claim.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

namespace ffr {
namespace {

namespace fs = std::filesystem;
using data::testing::expect_input_error;
using data::testing::TempDir;

// The pid of a process that has ended (and been reaped): a dead worker.
int64_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

void write_claim(const std::string& path, int64_t pid, const std::string& host, uint64_t ticks) {
  write_text_atomically(path, nlohmann::json{{"pid", pid}, {"host", host}, {"start_ticks", ticks}}.dump());
}

TEST(RunClaim, OneHolderAtATimeAndReleasedWhenDone) {
  TempDir dir;
  const std::string run = (dir / "run-a").string();
  {
    std::unique_ptr<RunClaim> claim = try_claim(run);
    ASSERT_NE(claim, nullptr);
    EXPECT_EQ(claim->path(), run + ".claim");
    const ClaimHolder holder = read_claim(claim->path());
    EXPECT_EQ(holder.pid, ::getpid());
    EXPECT_EQ(holder.host, this_process().host);
    EXPECT_GT(holder.start_ticks, 0u);
    ClaimHolder seen;
    EXPECT_EQ(try_claim(run, &seen), nullptr);  // held by a live process (this one)
    EXPECT_EQ(seen.pid, ::getpid());
    EXPECT_FALSE(is_stale(seen));
  }
  EXPECT_FALSE(fs::exists(run + ".claim"));
  EXPECT_NE(try_claim(run), nullptr);
}

TEST(RunClaim, StaleClaimsOfDeadOrReusedPidsAreTakenOver) {
  TempDir dir;
  const std::string host = this_process().host;
  const std::string dead = (dir / "dead").string();
  write_claim(dead + ".claim", dead_pid(), host, 12345);
  EXPECT_NE(try_claim(dead), nullptr);

  // A live pid with another start time: the pid was reused after the worker died.
  const std::string reused = (dir / "reused").string();
  write_claim(reused + ".claim", ::getpid(), host, this_process().start_ticks + 1);
  EXPECT_NE(try_claim(reused), nullptr);

  // Another host's claim cannot be checked from here: honoured.
  const std::string foreign = (dir / "foreign").string();
  write_claim(foreign + ".claim", dead_pid(), "some-other-host", 1);
  ClaimHolder holder;
  EXPECT_EQ(try_claim(foreign, &holder), nullptr);
  EXPECT_EQ(holder.host, "some-other-host");
}

TEST(RunClaim, ABadClaimFileIsNamed) {
  TempDir dir;
  const std::string run = (dir / "run").string();
  write_text_atomically(run + ".claim", "not json");
  expect_input_error([&] { try_claim(run); }, {run + ".claim", "not a claim file"});
}

// Results depend on the config only, so who ran a run does not matter.
ExperimentResult fake_result(const ExperimentConfig& c) {
  ExperimentResult r;
  r.config = c;
  r.test.worst_group_accuracy = 0.5 + 0.01 * double(c.seed);
  r.device = "cpu (fake)";
  return r;
}

GridOptions small_options() {
  GridOptions o;
  o.presets = {"figure3"};
  o.manifests = {"data/toy/manifest.csv"};
  o.bias_ratios = {0.9};
  o.seeds = {0, 1};
  o.learning_rates = {1e-4, 1e-5};
  return o;
}

TEST(GridWorkers, WorkersSharingAFolderDoEachRunOnce) {
  TempDir dir;
  const Grid grid = make_grid(small_options());
  std::mutex mutex;
  std::map<std::string, int> calls;
  const RunFunction run = [&](const ExperimentConfig& c, const std::string& d, const ProgressCallback&) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++calls[d];
    }
    EXPECT_TRUE(fs::exists(claim_path(d)));  // held while it runs
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    fs::create_directories(d);
    const ExperimentResult r = fake_result(c);
    write_text_atomically((fs::path(d) / kResultFile).string(), result_to_json(r));
    return r;
  };
  // Threads of one process stand in for worker processes: a claim held by a live pid is skipped
  // by the others all the same.
  std::atomic<int64_t> ran{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&] {
      const GridWorkerSummary s = run_grid_worker(grid, {dir.path().string(), {}, {}}, run, {}, 0.01);
      EXPECT_TRUE(s.held_elsewhere.empty());
      ran += s.runs.ran;
    });
  }
  for (std::thread& t : workers) t.join();
  // The plan as the folder stands now: FFR stage-2 runs named after their stage-1 search's choice.
  const std::vector<GridRun> planned = plan_runs(grid, completed_runs({dir.path().string()}));
  EXPECT_EQ(calls.size(), planned.size());
  for (const auto& [d, n] : calls) EXPECT_EQ(n, 1) << d;
  EXPECT_EQ(ran.load(), int64_t(planned.size()));
  for (const GridRun& r : planned) {
    EXPECT_FALSE(r.pending) << r.name;
    EXPECT_TRUE(has_result(run_dir(dir.path().string(), r)));
    EXPECT_FALSE(fs::exists(claim_path(run_dir(dir.path().string(), r))));
  }
}

TEST(GridWorkers, ADeadWorkersRunIsTakenOverAndForeignClaimsAreLeft) {
  TempDir dir;
  const Grid grid = make_grid(small_options());
  const std::string out = dir.path().string();
  std::vector<GridRun> runs = plan_runs(grid);
  runs.erase(std::remove_if(runs.begin(), runs.end(), [](const GridRun& r) { return r.pending; }), runs.end());
  fs::create_directories(runs_dir(out));
  const std::string dead_run = run_dir(out, runs[0]), foreign_run = run_dir(out, runs[1]);
  write_claim(claim_path(dead_run), dead_pid(), this_process().host, 1);
  write_claim(claim_path(foreign_run), 4242, "some-other-host", 1);
  int calls = 0;
  const RunFunction run = [&](const ExperimentConfig& c, const std::string& d, const ProgressCallback&) {
    ++calls;
    fs::create_directories(d);
    const ExperimentResult r = fake_result(c);
    write_text_atomically((fs::path(d) / kResultFile).string(), result_to_json(r));
    return r;
  };
  const GridWorkerSummary s = run_grid_worker(grid, {out, {}, {}}, run, {}, 0.01);
  // Every run that can run, but the foreign one (stage-2 runs of a cell whose stage-1 search it
  // belongs to stay pending).
  const std::vector<GridRun> planned = plan_runs(grid, completed_runs({out}));
  const auto runnable = std::count_if(planned.begin(), planned.end(), [](const GridRun& r) { return !r.pending; });
  EXPECT_EQ(calls, int(runnable) - 1);
  EXPECT_TRUE(has_result(dead_run));
  EXPECT_FALSE(has_result(foreign_run));
  ASSERT_EQ(s.held_elsewhere.size(), 1u);
  EXPECT_NE(s.held_elsewhere[0].find("some-other-host"), std::string::npos);
}

}  // namespace
}  // namespace ffr
