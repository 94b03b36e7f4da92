#include "engine/cuda/context.h"

#include "engine/allocator.h"
#include "engine/cuda/allocators.h"
#include "engine/device.h"

#include <memory>
#include <new>
#include <vector>

namespace ffr::cuda {

Context::Context(int device_index) : device(device_index) {
  DeviceGuard guard(Device::cuda(device));  // handles and stream belong to the current device
  FFR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  FFR_CUBLAS_CHECK(cublasCreate(&cublas));
  FFR_CUBLAS_CHECK(cublasSetStream(cublas, stream));
  FFR_CUDNN_CHECK(cudnnCreate(&cudnn));
  FFR_CUDNN_CHECK(cudnnSetStream(cudnn, stream));
}

Context::~Context() {
  DeviceGuard guard(Device::cuda(device), std::nothrow);
  if (stream != nullptr) FFR_CUDA_WARN(cudaStreamSynchronize(stream));
  if (workspace != nullptr) cuda_allocator(device).deallocate(workspace, workspace_bytes);
  if (cudnn != nullptr) FFR_CUDA_WARN(cudnnDestroy(cudnn));
  if (cublas != nullptr) FFR_CUDA_WARN(cublasDestroy(cublas));
  if (stream != nullptr) {
    // Synchronized above: the blocks cached for this stream may go to any stream, before a new
    // stream can be given the same handle.
    retire_stream(device, stream);
    FFR_CUDA_WARN(cudaStreamDestroy(stream));
  }
}

void* Context::ensure_workspace(size_t bytes) {
  if (bytes <= workspace_bytes) return workspace;
  Allocator& allocator = cuda_allocator(device);
  // Freed on this context's stream, so only work queued after this on the same stream (or, once
  // an event says the stream has passed this point, another stream) can reuse it.
  if (workspace != nullptr) allocator.deallocate(workspace, workspace_bytes);
  workspace = nullptr;
  workspace_bytes = 0;
  workspace = allocator.allocate(bytes);
  workspace_bytes = bytes;
  return workspace;
}

namespace {

// This thread's contexts by device index; destroyed when the thread ends (RAII), so worker
// threads clean up. `table_gone` is trivially destructible, so it can still be read by
// thread_local destructors that run after the table's (tensors freed during thread exit).
thread_local bool table_gone = false;

struct ContextTable {
  std::vector<std::unique_ptr<Context>> contexts;
  ~ContextTable() {
    table_gone = true;  // from here on frees see no context: their stream is being synchronized
    for (auto& ctx : contexts) ctx.reset();
  }
};

thread_local ContextTable table;

}  // namespace

Context& context(int device) {
  FFR_CHECK(device >= 0, "no CUDA device ", device);
  FFR_CHECK(!table_gone, "CUDA work on a thread that is exiting");
  if (size_t(device) >= table.contexts.size()) table.contexts.resize(size_t(device) + 1);
  auto& slot = table.contexts[size_t(device)];
  if (!slot) slot = std::make_unique<Context>(device);
  return *slot;
}

Context& context() {
  int device = 0;
  FFR_CUDA_CHECK(cudaGetDevice(&device));
  return context(device);
}

Context* existing_context(int device) noexcept {
  if (table_gone || device < 0 || size_t(device) >= table.contexts.size()) return nullptr;
  return table.contexts[size_t(device)].get();
}

}  // namespace ffr::cuda
