// Memory for tensors. Op code never calls malloc/cudaMalloc: storage comes from an Allocator.
//
// - cpu_allocator(): 64-byte aligned host memory.
// - pinned_allocator(): page-locked host memory for async host<->device copies (plain host memory
//   when no GPU). Freed blocks are reused, or returned to the OS, only once the copies that used
//   them have finished; at most 1 GiB is kept cached, release_cached() returns all it can.
// - cuda_allocator(): a caching allocator per device (engine/block_pool.h). Blocks are split
//   from and merged back into cached segments and tagged with the stream of the thread that
//   allocated them: reused at once on that stream, by another stream only after an event says
//   the first is done with them. A training step in steady state asks the OS for nothing (a
//   requirement of CUDA-graph capture). When the GPU is full it releases the unused cached
//   segments (if any), retries once, then throws OutOfMemoryError with the requested and free
//   bytes.
//
// Every allocator counts current and peak bytes (allocated: handed out now; reserved: held from
// the OS, allocated + cached), and can be given a limit (a constrained deployment, or a test
// simulating an allocation failure).
#pragma once

#include "engine/device.h"

#include <cstddef>
#include <cstdint>

namespace ffr {

struct MemoryStats {
  size_t allocated_bytes = 0;       // handed out to tensors now
  size_t peak_allocated_bytes = 0;  // max of the above since the last reset_peak()
  size_t reserved_bytes = 0;        // held from the OS (allocated + cached)
  size_t peak_reserved_bytes = 0;
  uint64_t allocations = 0;         // requests served
  uint64_t os_allocations = 0;      // requests that went to the OS (cudaMalloc, aligned_alloc)

  // Book-keeping shared by the allocators: a block of `bytes` handed out, `new_reserve` of it
  // newly taken from the OS (0 when it came from a cache).
  void record_allocation(size_t bytes, size_t new_reserve) {
    allocated_bytes += bytes;
    allocations += 1;
    if (new_reserve > 0) {
      reserved_bytes += new_reserve;
      os_allocations += 1;
    }
    if (allocated_bytes > peak_allocated_bytes) peak_allocated_bytes = allocated_bytes;
    if (reserved_bytes > peak_reserved_bytes) peak_reserved_bytes = reserved_bytes;
  }
  void reset_peak() {
    peak_allocated_bytes = allocated_bytes;
    peak_reserved_bytes = reserved_bytes;
  }
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Returns cached, unused blocks to the OS.
  virtual void release_cached() {}
  // Refuse (OutOfMemoryError) any allocation that would push allocated bytes past `bytes`;
  // 0 = no limit.
  virtual void set_limit(size_t bytes) = 0;
  virtual Device device() const = 0;
};

Allocator& cpu_allocator();
Allocator& pinned_allocator();
Allocator& cuda_allocator(int device = 0);
Allocator& allocator_for(Device device);

}  // namespace ffr
