// A folder built under a temporary name and renamed into place in one step, so a data set is
// either complete or absent: an error or a crash half-way never leaves half of one behind.
// (Single files use engine/atomic_file.h.)
#pragma once

#include <filesystem>

namespace ffr::data {

class StagingDirectory {
 public:
  // Creates ".<name>.staging-<pid>-<n>" beside `final_path`. Throws ffr::InputError when
  // `final_path` exists and `replace_existing` is false, or when the folder cannot be made.
  StagingDirectory(std::filesystem::path final_path, bool replace_existing);
  // Deletes the staging folder unless commit() ran.
  ~StagingDirectory();
  StagingDirectory(const StagingDirectory&) = delete;
  StagingDirectory& operator=(const StagingDirectory&) = delete;

  const std::filesystem::path& path() const { return staging_path_; }
  const std::filesystem::path& final_path() const { return final_path_; }
  // Renames the staging folder to final_path (moving an existing one aside first and deleting it
  // after), then fsyncs the parent folder.
  void commit();

 private:
  std::filesystem::path final_path_;
  std::filesystem::path staging_path_;
  bool replace_existing_;
  bool committed_ = false;
};

}  // namespace ffr::data
