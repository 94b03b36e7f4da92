#include "engine/atomic_file.h"

#include "engine/error.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace ffr {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw Error(detail::concat(path, ": ", what, ": ", std::strerror(err)));
}

// The temp file until it is renamed into place: closed and deleted if anything goes wrong first.
class TempFile {
 public:
  explicit TempFile(const std::string& target) : target_(target) {
    namespace fs = std::filesystem;
    const fs::path target_path(target);
    const std::string name = target_path.filename().string();
    if (name.empty() || name == "." || name == "..") {
      throw Error(detail::concat(target, ": cannot write: not a file path"));
    }
    folder_ = target_path.parent_path().empty() ? std::string(".") : target_path.parent_path().string();

    // The counter keeps two threads of one process apart; O_EXCL guards against anything else
    // (a stale temp file left by a crashed process that had the same pid).
    static std::atomic<unsigned> counter{0};
    int fd = -1;
    for (int attempt = 0; fd < 0; ++attempt) {
      path_ = (fs::path(folder_) / detail::concat(".", name, ".tmp.", ::getpid(), ".", counter++)).string();
      fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 && (errno != EEXIST || attempt >= 100)) fail(target, "cannot create a temp file in " + folder_, errno);
    }
    file_ = ::fdopen(fd, "wb");
    if (file_ == nullptr) {
      const int err = errno;
      ::close(fd);
      ::unlink(path_.c_str());
      fail(target, "cannot open a temp file", err);
    }
  }

  ~TempFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (!renamed_) ::unlink(path_.c_str());
  }

  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  std::FILE* file() const { return file_; }

  // Makes the written bytes durable and moves them over the target.
  void commit(int errno_after_writer) {
    if (std::ferror(file_)) fail(target_, "write failed", errno_after_writer != 0 ? errno_after_writer : EIO);
    if (std::fflush(file_) != 0) fail(target_, "write failed", errno);
    if (::fsync(::fileno(file_)) != 0) fail(target_, "fsync failed", errno);
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (closed != 0) fail(target_, "close failed", errno);  // NFS reports deferred write errors here
    if (::rename(path_.c_str(), target_.c_str()) != 0) fail(target_, "cannot rename the temp file over it", errno);
    renamed_ = true;
    sync_folder();
  }

 private:
  // The new file is complete and in place by now; this only makes the rename survive a power loss.
  void sync_folder() const {
    const int fd = ::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // some file systems refuse to open folders: nothing more we can do
    const int synced = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    // EINVAL: the file system does not support syncing folders (it then orders metadata itself).
    if (synced != 0 && err != EINVAL) fail(target_, "fsync of folder " + folder_ + " failed", err);
  }

  std::string target_;
  std::string folder_;
  std::string path_;
  std::FILE* file_ = nullptr;
  bool renamed_ = false;
};

}  // namespace

void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& writer) {
  TempFile temp(path);
  errno = 0;
  writer(temp.file());
  temp.commit(errno);
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](std::FILE* file) { std::fwrite(text.data(), 1, text.size(), file); });
}

}  // namespace ffr
