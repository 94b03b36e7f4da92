// Files that readers see either whole (old or new) or not at all: checkpoints, results, manifests.
// A crash, a full disk or an exception half-way through a write never leaves a truncated file
// where a complete one used to be.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

namespace ffr {

// Calls `writer` on a temp file beside `path` (".<name>.tmp.<pid>.<n>" in the same folder, so the
// final rename stays on one file system and is atomic), then fflush, fsync, close, rename it over
// `path`, and fsync the folder so the rename itself survives a power loss.
//
// Failures: an I/O error (folder missing, disk full, rename refused) throws ffr::Error naming
// `path` and the errno text; an exception from `writer` propagates unchanged. Either way the temp
// file is removed and `path` keeps its old contents (or stays absent).
//
// `writer` may use any stdio call on the FILE; write errors are picked up from ferror() afterwards.
void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& writer);

// write_file_atomically for a file made of one string (JSON, CSV, Markdown).
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace ffr
