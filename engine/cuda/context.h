// The CUDA state an op needs: this thread's stream and the library handles bound to it.
// One context per (thread, device), made on first use and owned by RAII (handles destroyed with
// the thread). Ops take the stream from here; all of a thread's work on a device is ordered on
// it, which is what lets the caching allocator reuse a freed block on the same stream without
// events (blocks are tagged with their stream; see engine/block_pool.h), and what a CUDA graph
// captures. Internal header (CUDA types).
#pragma once

#include "engine/cuda/check.h"

#include <cstddef>

namespace ffr::cuda {

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  // Scratch for cuDNN, grown (never in a captured step: sized by the first step).
  void* workspace = nullptr;
  size_t workspace_bytes = 0;

  Context(int device);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Workspace of at least `bytes`, from the caching allocator.
  void* ensure_workspace(size_t bytes);
};

// This thread's context for `device`, made on first use (the current device is left as it was).
Context& context(int device);
// This thread's context for its current CUDA device (device 0 unless a DeviceGuard or
// cudaSetDevice chose another): kernels launch on the current device, so on its stream.
Context& context();
inline cudaStream_t stream() { return context().stream; }
// This thread's context for `device` if it has one, else nullptr. Makes nothing, never throws:
// for free paths (destructors), where a thread that has no context has queued no work.
Context* existing_context(int device) noexcept;

// Grid size for a 1-D elementwise launch of n items at `threads` per block (capped: kernels
// use grid-stride loops).
inline unsigned int blocks_for(int64_t n, int threads = 256) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  return static_cast<unsigned int>(blocks);
}

}  // namespace ffr::cuda
