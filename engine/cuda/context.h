// The CUDA state an op needs: this thread's stream and the library handles bound to it.
// One context per (thread, device), made on first use and owned by RAII (handles destroyed with
// the thread). Ops take the stream from here; all of a thread's work is ordered on it, which is
// what lets the caching allocator reuse freed blocks without events, and what a CUDA graph
// captures. Internal header (CUDA types).
#pragma once

#include "engine/cuda/check.h"

#include <cstddef>

namespace ffr::cuda {

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cublasLtHandle_t cublas_lt = nullptr;
  cudnnHandle_t cudnn = nullptr;
  // Scratch for cuBLASLt / cuDNN, grown (never in a captured step: sized by the first step).
  void* workspace = nullptr;
  size_t workspace_bytes = 0;

  Context(int device);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Workspace of at least `bytes`, from the caching allocator.
  void* ensure_workspace(size_t bytes);
};

// This thread's context for the current device (device 0 unless set_device was called).
Context& context();
inline cudaStream_t stream() { return context().stream; }

// Grid size for a 1-D elementwise launch of n items at `threads` per block (capped: kernels
// use grid-stride loops).
inline unsigned int blocks_for(int64_t n, int threads = 256) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  return static_cast<unsigned int>(blocks);
}

}  // namespace ffr::cuda
