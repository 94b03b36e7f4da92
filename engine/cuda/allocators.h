// What the CUDA context and the copies tell the allocators (internal header: CUDA types).
#pragma once

#include "engine/cuda/check.h"

namespace ffr::cuda {

// `stream` (of `device`) has been synchronized and is about to be destroyed: the caching
// allocator's blocks cached for it become free for any stream.
void retire_stream(int device, cudaStream_t stream) noexcept;

// An async copy queued on `stream` (of `device`) reads or writes host memory at `host`. If that
// is pinned memory, its block is not reused or freed until the copy has completed (the role of
// PyTorch's CachingHostAllocator_recordEvent). Other host memory: nothing to do.
void record_pinned_use(const void* host, cudaStream_t stream, int device);

}  // namespace ffr::cuda
