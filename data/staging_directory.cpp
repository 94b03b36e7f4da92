#include "data/staging_directory.h"

#include "engine/error.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace fs = std::filesystem;

namespace ffr::data {

namespace {

// Unique per process and call, so concurrent writers in one folder never share a temp name.
fs::path temp_sibling(const fs::path& path, const char* tag) {
  static std::atomic<unsigned> counter{0};  // a name generator, not shared program state
  return path.parent_path() /
         detail::concat(".", path.filename().string(), ".", tag, "-", ::getpid(), "-", counter++);
}

void fsync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;  // best effort: some file systems refuse to open folders
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

StagingDirectory::StagingDirectory(fs::path final_path, bool replace_existing)
    : final_path_(std::move(final_path)), replace_existing_(replace_existing) {
  std::error_code ec;
  if (fs::exists(final_path_, ec) && !replace_existing_) {
    throw InputError(detail::concat(final_path_.string(),
                                    ": already exists (pass --force to replace it)"));
  }
  fs::path parent = final_path_.parent_path();
  if (parent.empty()) parent = ".";
  fs::create_directories(parent, ec);
  if (ec) {
    throw InputError(detail::concat(parent.string(), ": cannot create folder: ", ec.message()));
  }
  staging_path_ = temp_sibling(final_path_, "staging");
  fs::create_directory(staging_path_, ec);
  if (ec) {
    throw InputError(detail::concat(staging_path_.string(), ": cannot create folder: ", ec.message()));
  }
}

StagingDirectory::~StagingDirectory() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_path_, ec);
}

void StagingDirectory::commit() {
  FFR_CHECK(!committed_, "StagingDirectory committed twice: ", final_path_.string());
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_path_, ec)) {
    // Move the old folder aside first so the new one appears in one rename.
    old = temp_sibling(final_path_, "old");
    fs::rename(final_path_, old, ec);
    if (ec) throw InputError(detail::concat(final_path_.string(), ": cannot replace: ", ec.message()));
  }
  fs::rename(staging_path_, final_path_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, final_path_, ec);
    throw InputError(detail::concat(final_path_.string(), ": cannot move the built folder into place: ",
                                    ec.message()));
  }
  committed_ = true;
  fs::path parent = final_path_.parent_path();
  fsync_path(parent.empty() ? fs::path(".") : parent, O_RDONLY | O_DIRECTORY);
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace ffr::data
