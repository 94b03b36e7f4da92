// What this build of the engine is: its version, git commit, build type, compiler and the
// versions of the libraries it was compiled against (CUDA, cuDNN, cuBLAS, OpenBLAS). `ffr-bench
// --version` prints it, and every result a run writes carries it (config.json, result.json,
// report.md, checkpoint metadata), so a number can be traced to the code that produced it. It is
// constant within a build: files that two runs of one build write stay byte-identical.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ffr {

struct BuildInfo {
  std::string version;     // the project's version (CMake's project())
  std::string git_commit;  // "unknown" where the source had no git checkout; "-dirty": local changes
  std::string build_type;  // Release, Debug, ...
  std::string compiler;    // e.g. "GCC 12.2.0"
  std::string cuda;        // the CUDA toolkit compiled against; "none" in a CPU-only build
  std::string cudnn;       // "none" in a CPU-only build
  std::string cublas;      // "none" in a CPU-only build
  std::string openblas;    // the OpenBLAS headers compiled against
};

const BuildInfo& build_info();

// (key, value) pairs in a fixed order: "version", "git_commit", "build_type", "compiler", "cuda",
// "cudnn", "cublas", "openblas" (the JSON objects and the markdown block use these keys).
std::vector<std::pair<std::string, std::string>> build_info_fields();

// The JSON object of build_info_fields(), compact ({"version":"0.1.0",...}).
std::string build_info_json();

// A few lines for people: "ffr-engine 0.1.0 (commit ..., Release)\n  compiler ...\n ...".
std::string build_info_text();

}  // namespace ffr
