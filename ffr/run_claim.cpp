#include "ffr/run_claim.h"

#include "engine/error.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace ffr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw Error(detail::concat(path, ": ", what, ": ", std::strerror(err)));
}

// Field 22 of /proc/<pid>/stat (clock ticks after boot); 0 when the process does not exist. The
// command name (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
uint64_t process_start_ticks(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string claim_text(const ClaimHolder& h) {
  return json{{"pid", h.pid}, {"host", h.host}, {"start_ticks", h.start_ticks}, {"started", h.started}}.dump() + "\n";
}

// Exclusive flock on <runs>/.claims.lock for as long as it lives (released by the kernel if the
// process dies).
class ClaimsLock {
 public:
  explicit ClaimsLock(const std::string& runs_dir) {
    const std::string path = (fs::path(runs_dir) / ".claims.lock").string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path, "cannot open the claims lock", errno);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        const int err = errno;
        ::close(fd_);
        fail(path, "cannot lock", err);
      }
    }
  }
  ~ClaimsLock() { ::close(fd_); }  // closing releases the flock
  ClaimsLock(const ClaimsLock&) = delete;
  ClaimsLock& operator=(const ClaimsLock&) = delete;

 private:
  int fd_ = -1;
};

// Creates `path` holding `text`, atomically: false when it already exists.
bool create_exclusively(const std::string& path, const std::string& text) {
  const std::string temp = detail::concat(path, ".tmp.", ::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(temp, "cannot create a claim", errno);
  const bool written = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  const int write_err = errno;
  ::close(fd);
  if (!written) {
    ::unlink(temp.c_str());
    fail(temp, "cannot write a claim", write_err);
  }
  // link() fails with EEXIST when the name is taken: the claim is whole or absent, never half.
  const int linked = ::link(temp.c_str(), path.c_str());
  const int link_err = errno;
  ::unlink(temp.c_str());
  if (linked == 0) return true;
  if (link_err == EEXIST) return false;
  fail(path, "cannot create the claim", link_err);
}

}  // namespace

ClaimHolder this_process() {
  ClaimHolder h;
  h.pid = ::getpid();
  h.host = host_name();
  h.start_ticks = process_start_ticks(h.pid);
  h.started = utc_now();
  return h;
}

bool is_stale(const ClaimHolder& holder) {
  if (holder.host != host_name()) return false;
  if (holder.pid <= 0) return true;
  if (::kill(pid_t(holder.pid), 0) != 0 && errno == ESRCH) return true;
  const uint64_t ticks = process_start_ticks(holder.pid);
  // A zombie or a pid reused by another process: either way, not the worker that claimed the run.
  return ticks == 0 || (holder.start_ticks != 0 && ticks != holder.start_ticks);
}

std::string claim_path(const std::string& run_dir) {
  std::string dir = run_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + ".claim";
}

ClaimHolder read_claim(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(detail::concat(path, ": cannot read the claim file"));
  std::ostringstream text;
  text << in.rdbuf();
  try {
    const json j = json::parse(text.str());
    ClaimHolder h;
    h.pid = j.at("pid").get<int64_t>();
    h.host = j.at("host").get<std::string>();
    h.start_ticks = j.at("start_ticks").get<uint64_t>();
    h.started = j.value("started", std::string());
    return h;
  } catch (const json::exception& e) {
    throw InputError(detail::concat(path, ": not a claim file (", e.what(),
                                    "); delete it if no worker is running that run"));
  }
}

std::unique_ptr<RunClaim> try_claim(const std::string& run_dir, ClaimHolder* holder) {
  const std::string path = claim_path(run_dir);
  const ClaimsLock lock(fs::path(path).parent_path().string());
  const ClaimHolder me = this_process();
  if (create_exclusively(path, claim_text(me))) return std::make_unique<RunClaim>(path);
  const ClaimHolder other = read_claim(path);
  if (holder) *holder = other;
  if (!is_stale(other)) return nullptr;
  // Under the lock nobody else can take it between the removal and the creation.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail(path, "cannot remove a stale claim", errno);
  if (!create_exclusively(path, claim_text(me))) return nullptr;
  return std::make_unique<RunClaim>(path);
}

RunClaim::~RunClaim() {
  // Only our own claim: a claim taken over from us (we looked dead) belongs to its new holder.
  try {
    const ClaimsLock lock(fs::path(path_).parent_path().string());
    const ClaimHolder h = read_claim(path_);
    if (h.pid == ::getpid() && h.host == host_name()) ::unlink(path_.c_str());
  } catch (const std::exception&) {
    // A destructor must not throw; a claim left behind is stale once this process ends.
  }
}

}  // namespace ffr
