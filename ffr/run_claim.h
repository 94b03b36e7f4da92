// Claim files: how several grid workers (`grid --processes N` / `--devices`, one folder, one or
// more machines) take runs from one queue without doing a run twice. A worker owns a run while
// <run dir>.claim exists and names it (pid, host, the process's start time); the file sits beside
// the run folder, not in it, because run_experiment cleans an unfinished folder.
//
// Creation is atomic (the claim is written to a temp file, then link()ed to its name, which fails
// when the name exists), and every claim, stale check and release happens under an flock on
// <runs>/.claims.lock, so two workers cannot both find a claim stale and both take the run.
// A claim is stale when its process is gone: on this host, its pid is not running or is running
// with another start time (the pid was reused). A claim from another host cannot be checked from
// here; it is honoured (the caller says which, so the user can delete it if that worker is gone).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace ffr {

// Who holds a claim: what the file says.
struct ClaimHolder {
  int64_t pid = 0;
  std::string host;
  uint64_t start_ticks = 0;  // /proc/<pid>/stat's starttime: tells a reused pid from the holder
  std::string started;       // UTC time the claim was taken, for people
};

// This process, as a claim names it.
ClaimHolder this_process();

// True when `holder` is this host's and its process is gone (so its claim may be taken over).
bool is_stale(const ClaimHolder& holder);

// A run held by this process; the claim file is removed when this is destroyed.
class RunClaim {
 public:
  explicit RunClaim(std::string claim_path) : path_(std::move(claim_path)) {}
  ~RunClaim();
  RunClaim(const RunClaim&) = delete;
  RunClaim& operator=(const RunClaim&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string claim_path(const std::string& run_dir);  // <run dir>.claim

// Claims `run_dir` for this process: a RunClaim when the run is now ours (there was no claim, or a
// stale one, which is taken over), null when a live worker holds it (`holder`, if given, says who).
// A claim file that cannot be read as one throws InputError naming it.
std::unique_ptr<RunClaim> try_claim(const std::string& run_dir, ClaimHolder* holder = nullptr);

// Reads a claim file; InputError naming it when it is not one.
ClaimHolder read_claim(const std::string& path);

}  // namespace ffr
