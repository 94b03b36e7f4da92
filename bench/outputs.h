// Output folders of the commands that train: checked writable before any work, and what an
// unfinished run in one would resume from.
#pragma once

#include <string>

namespace ffr::bench {

// Creates `dir` (and its parents) and writes and removes a probe file in it, so that a folder the
// user cannot write is refused now, naming the flag and the path, not after an hour of training.
void ensure_writable_folder(const std::string& flag, const std::string& dir);

// "stage 1, epoch 3 of 20 done" when `run_dir` holds an unfinished run's resume file (read from
// the file's metadata only), else "" (no resume file, or one this build cannot read: the run
// itself then says what is wrong with it).
std::string resume_point(const std::string& run_dir);

}  // namespace ffr::bench
