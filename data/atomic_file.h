// Files that are either fully written or absent: a crash or an error never leaves half a
// manifest or half a data set behind.
#pragma once

#include <filesystem>
#include <string>

namespace ffr::data {

// Reads a whole file. Throws ffr::InputError naming `path` when it is missing or unreadable.
std::string read_text_file(const std::filesystem::path& path);

// Writes `contents` to a temp file in the same folder, fsyncs it, then renames it over `path`
// (rename within one file system is atomic, so readers see the old file or the new one).
void write_file_atomically(const std::filesystem::path& path, const std::string& contents);

// A folder built under a temporary name beside `final_path` and renamed into place by
// commit(); if never committed (an exception unwinds), the destructor deletes it.
class StagingDirectory {
 public:
  // Throws ffr::InputError when `final_path` exists and `replace_existing` is false.
  StagingDirectory(std::filesystem::path final_path, bool replace_existing);
  ~StagingDirectory();
  StagingDirectory(const StagingDirectory&) = delete;
  StagingDirectory& operator=(const StagingDirectory&) = delete;

  const std::filesystem::path& path() const { return staging_path_; }
  const std::filesystem::path& final_path() const { return final_path_; }
  void commit();

 private:
  std::filesystem::path final_path_;
  std::filesystem::path staging_path_;
  bool replace_existing_;
  bool committed_ = false;
};

}  // namespace ffr::data
