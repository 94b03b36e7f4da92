#include "engine/cuda/check.h"

#include <sstream>

namespace ffr::cuda {

namespace {
[[noreturn]] void throw_library_error(const char* library, const char* status_name, const char* detail,
                                      const char* call, const char* file, int line) {
  std::ostringstream out;
  out << library << " call " << call << " failed: " << status_name;
  if (detail != nullptr && detail[0] != '\0') out << " (" << detail << ")";
  const std::string& op = current_op_description();
  if (!op.empty()) out << " in op " << op;
  out << " at " << file << ":" << line;
  throw Error(out.str());
}
}  // namespace

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw_library_error("CUDA", cudaGetErrorName(status), cudaGetErrorString(status), call, file, line);
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw_library_error("cuBLAS", cublasGetStatusName(status), cublasGetStatusString(status), call, file, line);
}

void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line) {
  char last[512] = {0};
  ::cudnnGetLastErrorString(last, sizeof last);  // returns void: there is no status to check
  throw_library_error("cuDNN", cudnnGetErrorString(status), last, call, file, line);
}

}  // namespace ffr::cuda

#include <cstdio>

namespace ffr::cuda {
void warn_failed_call(const char* call, int status, const char* file, int line) {
  std::fprintf(stderr, "ffr-engine: warning: %s returned status %d at %s:%d\n", call, status, file, line);
}
}  // namespace ffr::cuda
