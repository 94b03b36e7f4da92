// Internal: the host allocator's class (tests use it directly, to simulate exhaustion or to watch
// its cache).
#pragma once

#include "engine/allocator.h"

#include <mutex>
#include <unordered_map>
#include <vector>

namespace ffr {

// A caching host allocator. A block is taken from the OS in a size class (the request rounded up
// by at most 1/8, so a tensor of a nearby size fits it too) and, when freed, kept on that class's
// free list for the next request of the class. A training step asks for the same sizes every
// step, so from the second step on it neither maps nor faults pages (glibc's malloc hands big
// blocks back to the OS at once, and each step paid the page faults again).
//
// Stats: allocated = bytes requested and not yet freed; reserved = the classes' bytes held from
// the OS (in use + cached). The limit bounds allocated bytes, as before. The cache is bounded by
// the allocated high-water mark (at least 64 MiB); beyond it, freed blocks go back to the OS.
// release_cached() returns every cached block, and an OS allocation that fails does so and tries
// once more before OutOfMemoryError.
class CpuAllocator : public Allocator {
 public:
  CpuAllocator() = default;
  ~CpuAllocator() override;
  CpuAllocator(const CpuAllocator&) = delete;
  CpuAllocator& operator=(const CpuAllocator&) = delete;

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  MemoryStats stats() const override;
  void reset_peak() override;
  void release_cached() override;
  void set_limit(size_t bytes) override;
  Device device() const override { return Device::cpu(); }

  size_t cached_bytes() const;
  // The bytes a request of `bytes` takes from the OS (its size class).
  static size_t size_class(size_t bytes);

 private:
  void release_cached_locked();

  mutable std::mutex mutex_;
  MemoryStats stats_;
  size_t limit_ = 0;
  size_t cached_bytes_ = 0;
  size_t high_water_ = 0;  // allocated bytes' maximum over the allocator's life (reset_peak keeps it)
  std::unordered_map<size_t, std::vector<void*>> free_blocks_;  // size class -> cached blocks
};

}  // namespace ffr
