// Checked calls for the CUDA runtime, cuBLAS and cuDNN. Every status is checked; a failure
// throws ffr::Error naming the call, the library's status name, the op being run (with its
// shapes, from OpScope), and the file and line:
//   FFR_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream));
//   FFR_CUDA_CHECK_LAUNCH();   // after a kernel launch: catches bad configurations at once
// Internal header: includes CUDA headers, so public headers never include it.
#pragma once

#include "engine/error.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

namespace ffr::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line);

}  // namespace ffr::cuda

#define FFR_CUDA_CHECK(call)                                                               \
  do {                                                                                     \
    const cudaError_t ffr_status_ = (call);                                                \
    if (ffr_status_ != cudaSuccess) ::ffr::cuda::throw_cuda_error(ffr_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define FFR_CUDA_CHECK_LAUNCH() FFR_CUDA_CHECK(cudaGetLastError())

#define FFR_CUBLAS_CHECK(call)                                                             \
  do {                                                                                     \
    const cublasStatus_t ffr_status_ = (call);                                             \
    if (ffr_status_ != CUBLAS_STATUS_SUCCESS)                                              \
      ::ffr::cuda::throw_cublas_error(ffr_status_, #call, __FILE__, __LINE__);             \
  } while (0)

#define FFR_CUDNN_CHECK(call)                                                              \
  do {                                                                                     \
    const cudnnStatus_t ffr_status_ = (call);                                              \
    if (ffr_status_ != CUDNN_STATUS_SUCCESS)                                               \
      ::ffr::cuda::throw_cudnn_error(ffr_status_, #call, __FILE__, __LINE__);              \
  } while (0)

// For destructors, which must not throw: reports a failed status on stderr instead.
#define FFR_CUDA_WARN(call)                                                                \
  do {                                                                                     \
    const auto ffr_status_ = (call);                                                       \
    if (static_cast<int>(ffr_status_) != 0)                                                \
      ::ffr::cuda::warn_failed_call(#call, static_cast<int>(ffr_status_), __FILE__, __LINE__); \
  } while (0)

namespace ffr::cuda {
void warn_failed_call(const char* call, int status, const char* file, int line);
}
