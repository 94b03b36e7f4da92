#include "engine/build_info.h"

#include "build_info_config.h"  // generated (cmake/build_info_config.h.in)
#include "build_info_git.h"     // generated at build time (cmake/git_commit.cmake)

#include <cblas.h>  // openblas_config.h: OPENBLAS_VERSION

#if FFR_WITH_CUDA
#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <cudnn_version.h>
#endif

#include <nlohmann/json.hpp>

#include <sstream>

namespace ffr {
namespace {

std::string trimmed(std::string s) {
  const auto first = s.find_first_not_of(' ');
  const auto last = s.find_last_not_of(' ');
  return first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
}

std::string compiler_text() {
  std::ostringstream out;
#if defined(__clang__)
  out << "Clang " << __clang_major__ << "." << __clang_minor__ << "." << __clang_patchlevel__;
#elif defined(__GNUC__)
  out << "GCC " << __GNUC__ << "." << __GNUC_MINOR__ << "." << __GNUC_PATCHLEVEL__;
#else
  out << "unknown compiler";
#endif
  return out.str();
}

BuildInfo make_build_info() {
  BuildInfo b;
  b.version = FFR_BUILD_VERSION;
  b.git_commit = FFR_BUILD_GIT_COMMIT;
  b.build_type = FFR_BUILD_TYPE;
  b.compiler = compiler_text();
#if FFR_WITH_CUDA
  std::ostringstream cuda, cudnn, cublas;
  // The toolkit CMake found, and the runtime headers' own number (they agree in a sane setup).
  cuda << FFR_BUILD_CUDA_TOOLKIT << " (runtime API " << CUDART_VERSION / 1000 << "." << (CUDART_VERSION % 1000) / 10
       << ")";
  cudnn << CUDNN_MAJOR << "." << CUDNN_MINOR << "." << CUDNN_PATCHLEVEL;
  cublas << CUBLAS_VER_MAJOR << "." << CUBLAS_VER_MINOR << "." << CUBLAS_VER_PATCH;
  b.cuda = cuda.str();
  b.cudnn = cudnn.str();
  b.cublas = cublas.str();
#else
  b.cuda = b.cudnn = b.cublas = "none";
#endif
#ifdef OPENBLAS_VERSION
  b.openblas = trimmed(OPENBLAS_VERSION);
#else
  b.openblas = "unknown";
#endif
  return b;
}

}  // namespace

const BuildInfo& build_info() {
  static const BuildInfo info = make_build_info();
  return info;
}

std::vector<std::pair<std::string, std::string>> build_info_fields() {
  const BuildInfo& b = build_info();
  return {{"version", b.version}, {"git_commit", b.git_commit}, {"build_type", b.build_type},
          {"compiler", b.compiler}, {"cuda", b.cuda},             {"cudnn", b.cudnn},
          {"cublas", b.cublas},     {"openblas", b.openblas}};
}

std::string build_info_json() {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [key, value] : build_info_fields()) j[key] = value;
  return j.dump();
}

std::string build_info_text() {
  const BuildInfo& b = build_info();
  std::ostringstream out;
  out << "ffr-engine " << b.version << " (commit " << b.git_commit << ", " << b.build_type << " build)\n"
      << "  compiler  " << b.compiler << "\n"
      << "  CUDA      " << b.cuda << "\n"
      << "  cuDNN     " << b.cudnn << "\n"
      << "  cuBLAS    " << b.cublas << "\n"
      << "  OpenBLAS  " << b.openblas << "\n";
  return out.str();
}

}  // namespace ffr
