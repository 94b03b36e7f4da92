#include "engine/cuda/context.h"

#include "engine/allocator.h"

#include <memory>
#include <vector>

namespace ffr::cuda {

Context::Context(int device_index) : device(device_index) {
  FFR_CUDA_CHECK(cudaSetDevice(device));
  FFR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  FFR_CUBLAS_CHECK(cublasCreate(&cublas));
  FFR_CUBLAS_CHECK(cublasSetStream(cublas, stream));
  FFR_CUBLAS_CHECK(cublasLtCreate(&cublas_lt));
  FFR_CUDNN_CHECK(cudnnCreate(&cudnn));
  FFR_CUDNN_CHECK(cudnnSetStream(cudnn, stream));
}

Context::~Context() {
  if (workspace != nullptr) {
    FFR_CUDA_WARN(cudaStreamSynchronize(stream));
    cuda_allocator(device).deallocate(workspace, workspace_bytes);
  }
  if (cudnn != nullptr) FFR_CUDA_WARN(cudnnDestroy(cudnn));
  if (cublas_lt != nullptr) FFR_CUDA_WARN(cublasLtDestroy(cublas_lt));
  if (cublas != nullptr) FFR_CUDA_WARN(cublasDestroy(cublas));
  if (stream != nullptr) FFR_CUDA_WARN(cudaStreamDestroy(stream));
}

void* Context::ensure_workspace(size_t bytes) {
  if (bytes <= workspace_bytes) return workspace;
  Allocator& allocator = cuda_allocator(device);
  if (workspace != nullptr) allocator.deallocate(workspace, workspace_bytes);
  workspace = allocator.allocate(bytes);
  workspace_bytes = bytes;
  return workspace;
}

Context& context() {
  // One per thread; destroyed when the thread ends (RAII), so worker threads clean up.
  thread_local std::unique_ptr<Context> ctx;
  if (!ctx) ctx = std::make_unique<Context>(0);
  return *ctx;
}

}  // namespace ffr::cuda
