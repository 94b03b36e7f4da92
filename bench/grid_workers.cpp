#include "bench/grid_workers.h"

#include "bench/command.h"
#include "bench/command_line.h"
#include "bench/interrupt.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/parallel.h"
#include "ffr/experiment.h"

#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ffr::bench {
namespace {

namespace fs = std::filesystem;

struct Worker {
  int index = 0;
  pid_t pid = -1;
  std::string log;
  std::vector<std::string> args;
  std::string cuda_device;      // CUDA_VISIBLE_DEVICES, GPU workers only
  std::vector<int> cores;       // CPU workers: pinned here when the groups fit the machine
  int status = 0;               // waitpid's, once exited
  bool exited = false;
};

// The allowed CPUs of this process, in order.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// The last line of a worker's log that says what went wrong ("error:"), else its last line.
std::string last_error(const std::string& log) {
  std::ifstream in(log);
  std::string line, last, error;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    last = line;
    if (line.find("error:") != std::string::npos) error = line;
  }
  return error.empty() ? last : error;
}

void start(Worker& w) {
  // Everything the child needs, built before fork: only async-signal-safe calls after it.
  std::vector<char*> argv;
  for (std::string& a : w.args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    if (w.cuda_device.empty() || std::strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) != 0) environment.emplace_back(*e);
  }
  if (!w.cuda_device.empty()) environment.push_back("CUDA_VISIBLE_DEVICES=" + w.cuda_device);
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string exe = own_executable();
  cpu_set_t cores;
  CPU_ZERO(&cores);
  for (int c : w.cores) CPU_SET(c, &cores);
  const int log = ::open(w.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) throw Error(detail::concat(w.log, ": cannot open the worker's log"));
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    throw Error("cannot start a grid worker (fork failed)");
  }
  if (pid == 0) {
    // The worker dies with this process (a Ctrl-C here is forwarded; a kill -9 here must not leave
    // workers running unseen: their claims turn stale and a rerun takes the runs over).
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::setpgid(0, 0);  // Ctrl-C reaches the workers once, through this process
    if (!w.cores.empty()) ::sched_setaffinity(0, sizeof cores, &cores);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::execve(exe.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log);
  w.pid = pid;
}

std::string describe_exit(const Worker& w) {
  if (WIFSIGNALED(w.status)) return detail::concat("killed by signal ", WTERMSIG(w.status));
  return detail::concat("exit ", WEXITSTATUS(w.status));
}

}  // namespace

std::vector<int> parse_devices(const std::string& text) {
  std::vector<int> devices;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int d = -1;
    try {
      d = std::stoi(item, &used);
    } catch (const std::exception&) {
    }
    if (used != item.size() || d < 0) {
      throw UsageError("--devices: expected CUDA device numbers, comma-separated (e.g. 0,1,2,3), got '" + text + "'");
    }
    for (int seen : devices) {
      if (seen == d) throw UsageError(detail::concat("--devices: device ", d, " is listed twice"));
    }
    devices.push_back(d);
  }
  if (devices.empty()) throw UsageError("--devices: expected CUDA device numbers, comma-separated (e.g. 0,1)");
  return devices;
}

void check_worker_plan(const WorkerPlan& plan) {
  if (plan.processes > 0 && !plan.devices.empty()) {
    throw UsageError("--processes: CPU workers; with --devices, use --workers-per-device for several workers per GPU");
  }
  if (plan.per_device < 1) throw UsageError("--workers-per-device: expected a number >= 1");
  if (plan.per_device > 1 && plan.devices.empty()) throw UsageError("--workers-per-device: needs --devices");
  if (!plan.devices.empty()) {
    if (!built_with_cuda()) {
      throw UsageError("--devices: this ffr-bench was built without CUDA; use --processes N for CPU workers");
    }
    const int count = cuda_device_count();
    for (int d : plan.devices) {
      if (d >= count) throw UsageError(detail::concat("--devices: no CUDA device ", d, " (this machine has ", count, ")"));
    }
  }
}

WorkersOutcome run_worker_processes(const WorkerPlan& plan, const RunPlanner& runs, const std::string& out) {
  const auto start_time = std::chrono::steady_clock::now();
  const fs::path logs = fs::path(out) / "workers";
  fs::create_directories(logs);
  // The same command line, minus what made this process the launcher, plus what makes a worker.
  const std::vector<std::string> base = without_flags(own_command_line(), {"--processes", "--devices",
                                                                            "--workers-per-device", "--threads"});
  std::vector<Worker> workers;
  if (!plan.devices.empty()) {
    for (int d : plan.devices) {
      for (int k = 0; k < plan.per_device; ++k) {
        Worker w;
        w.cuda_device = std::to_string(d);
        w.args = without_flags(base, {"--device"});
        w.args.insert(w.args.end(), {"--device", "cuda"});
        if (plan.threads > 0) w.args.insert(w.args.end(), {"--threads", std::to_string(plan.threads)});
        workers.push_back(w);
      }
    }
  } else {
    const std::vector<int> cpus = allowed_cpus();
    const int threads = plan.threads > 0 ? plan.threads : std::max<int>(1, int(cpus.size()) / plan.processes);
    const bool pin = size_t(threads) * size_t(plan.processes) <= cpus.size();
    for (int i = 0; i < plan.processes; ++i) {
      Worker w;
      w.args = base;
      w.args.insert(w.args.end(), {"--threads", std::to_string(threads)});
      if (pin) w.cores.assign(cpus.begin() + i * threads, cpus.begin() + (i + 1) * threads);
      workers.push_back(w);
    }
  }
  for (size_t i = 0; i < workers.size(); ++i) {
    Worker& w = workers[i];
    w.index = int(i);
    w.log = (logs / detail::concat("worker-", i, ".log")).string();
    w.args.push_back("--grid-worker");
    start(w);
    std::printf("worker %zu: pid %d%s%s, log %s\n", i, int(w.pid),
                w.cuda_device.empty() ? "" : (", CUDA device " + w.cuda_device).c_str(),
                w.cores.empty() ? "" : detail::concat(", cores ", w.cores.front(), "-", w.cores.back()).c_str(),
                w.log.c_str());
  }
  std::fflush(stdout);

  // (complete, runnable, pending) runs of the share as it stands.
  struct Count {
    size_t complete = 0, runnable = 0, pending = 0;
  };
  auto count = [&] {
    Count c;
    for (const GridRun& r : runs()) {
      if (r.pending) {
        ++c.pending;
        continue;
      }
      ++c.runnable;
      c.complete += has_result(run_dir(out, r)) ? 1 : 0;
    }
    return c;
  };
  size_t shown = size_t(-1), running = workers.size();
  bool forwarded = false;
  while (running > 0) {
    for (Worker& w : workers) {
      if (w.exited) continue;
      if (::waitpid(w.pid, &w.status, WNOHANG) == w.pid) {
        w.exited = true;
        --running;
        if (w.status != 0) std::printf("worker %d: %s\n", w.index, describe_exit(w).c_str());
      }
    }
    if (interrupt_requested() && !forwarded) {
      for (const Worker& w : workers) {
        if (!w.exited) ::kill(w.pid, SIGINT);
      }
      forwarded = true;
    }
    const Count now = count();
    if (now.complete != shown) {
      std::printf("[%zu/%zu runs complete]\n", now.complete, now.runnable + now.pending);
      std::fflush(stdout);
      shown = now.complete;
    }
    // Each look plans the share again (it reads the finished runs' results): not too often.
    if (running > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (forwarded) throw Interrupted("interrupted: rerun the same command to resume the grid");

  const Count end = count();
  std::string failures;
  for (const Worker& w : workers) {
    if (w.status == 0) continue;
    failures += detail::concat("\n  worker ", w.index, " (", describe_exit(w), "): ", last_error(w.log), " [", w.log, "]");
  }
  if (end.complete < end.runnable) {
    throw Error(detail::concat("grid: ", end.runnable - end.complete, " of ", end.runnable, " runs are not complete",
                               failures.empty() ? std::string(" (held by workers on other hosts; see the logs)") : failures,
                               "\nrerun the same command to finish them"));
  }
  if (!failures.empty()) {
    std::printf("warning: every run is complete, but not every worker ended well:%s\n", failures.c_str());
  }
  WorkersOutcome outcome;
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  outcome.pending = int64_t(end.pending);
  return outcome;
}

}  // namespace ffr::bench
