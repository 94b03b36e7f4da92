// Host allocators. The CPU allocator does not cache (malloc already does); it counts bytes and
// honours a limit. Without CUDA the pinned allocator is the CPU allocator.
#include "engine/allocator.h"
#include "engine/cpu_allocator.h"
#include "engine/error.h"

#include <cstdlib>
#include <mutex>

namespace ffr {

void* CpuAllocator::allocate(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (limit_ != 0 && stats_.allocated_bytes + bytes > limit_) {
    throw OutOfMemoryError(detail::concat("host out of memory: requested ", bytes, " bytes, ",
                                          limit_ - stats_.allocated_bytes,
                                          " bytes free under the allocator limit; try a smaller batch"),
                           bytes, limit_ - stats_.allocated_bytes);
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* ptr = rounded == 0 ? nullptr : std::aligned_alloc(64, rounded);
  if (rounded != 0 && ptr == nullptr) {
    throw OutOfMemoryError(detail::concat("host out of memory: requested ", bytes,
                                          " bytes; try a smaller batch"), bytes, 0);
  }
  stats_.record_allocation(bytes, bytes);
  return ptr;
}

void CpuAllocator::deallocate(void* ptr, size_t bytes) {
  std::free(ptr);
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.allocated_bytes -= bytes;
  stats_.reserved_bytes -= bytes;
}

MemoryStats CpuAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CpuAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.reset_peak();
}

void CpuAllocator::set_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  limit_ = bytes;
}

Allocator& cpu_allocator() {
  static CpuAllocator allocator;
  return allocator;
}

#ifndef FFR_WITH_CUDA
Allocator& pinned_allocator() { return cpu_allocator(); }
Allocator& cuda_allocator(int) { FFR_FAIL("this build has no CUDA backend"); }
#endif

Allocator& allocator_for(Device device) {
  return device.is_cuda() ? cuda_allocator(device.index) : cpu_allocator();
}

}  // namespace ffr
