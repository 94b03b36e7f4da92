// Host allocators: the caching CPU allocator (engine/cpu_allocator.h). Without CUDA the pinned
// allocator is the CPU allocator.
#include "engine/allocator.h"
#include "engine/cpu_allocator.h"
#include "engine/error.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>

namespace ffr {

namespace {

constexpr size_t kAlignment = 64;          // a cache line: what vector loads want
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kMinCacheBytes = size_t(64) << 20;

// Big blocks start on a 2 MiB boundary and ask for transparent huge pages: one fault per 2 MiB
// instead of 512 on the first touch, and fewer TLB misses in the kernels that stream them.
void* os_allocate(size_t bytes) {
  if (bytes >= 2 * kHugePage) {
    void* ptr = std::aligned_alloc(kHugePage, bytes);  // bytes is a multiple of 2 MiB here
#ifdef MADV_HUGEPAGE
    if (ptr != nullptr) madvise(ptr, bytes, MADV_HUGEPAGE);
#endif
    return ptr;
  }
  return std::aligned_alloc(kAlignment, bytes);
}

}  // namespace

size_t CpuAllocator::size_class(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded <= 4096) return rounded;
  // Eight classes per power of two: a block serves any request down to 7/8 of its size.
  size_t octave = 1;
  while (octave * 2 <= rounded - 1) octave *= 2;
  const size_t step = std::max<size_t>(octave / 8, kAlignment);
  rounded = (rounded + step - 1) / step * step;
  if (rounded >= 2 * kHugePage) rounded = (rounded + kHugePage - 1) / kHugePage * kHugePage;
  return rounded;
}

CpuAllocator::~CpuAllocator() { release_cached_locked(); }

void* CpuAllocator::allocate(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (limit_ != 0 && stats_.allocated_bytes + bytes > limit_) {
    throw OutOfMemoryError(detail::concat("host out of memory: requested ", bytes, " bytes, ",
                                          limit_ - stats_.allocated_bytes,
                                          " bytes free under the allocator limit; try a smaller batch"),
                           bytes, limit_ - stats_.allocated_bytes);
  }
  if (bytes > (SIZE_MAX >> 2)) {
    throw OutOfMemoryError(detail::concat("host out of memory: requested ", bytes, " bytes; try a smaller batch"),
                           bytes, 0);
  }
  if (bytes == 0) {
    stats_.record_allocation(0, 0);
    return nullptr;
  }
  const size_t block = size_class(bytes);
  void* ptr = nullptr;
  size_t new_reserve = 0;
  auto cached = free_blocks_.find(block);
  if (cached != free_blocks_.end() && !cached->second.empty()) {
    ptr = cached->second.back();
    cached->second.pop_back();
    cached_bytes_ -= block;
  } else {
    ptr = os_allocate(block);
    if (ptr == nullptr && cached_bytes_ > 0) {
      release_cached_locked();
      ptr = os_allocate(block);
    }
    if (ptr == nullptr) {
      throw OutOfMemoryError(detail::concat("host out of memory: requested ", bytes, " bytes; try a smaller batch"),
                             bytes, 0);
    }
    new_reserve = block;
  }
  stats_.record_allocation(bytes, new_reserve);
  high_water_ = std::max(high_water_, stats_.allocated_bytes);
  return ptr;
}

void CpuAllocator::deallocate(void* ptr, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.allocated_bytes -= bytes;
  if (ptr == nullptr) return;
  const size_t block = size_class(bytes);
  if (cached_bytes_ + block > std::max(high_water_, kMinCacheBytes)) {
    std::free(ptr);
    stats_.reserved_bytes -= block;
    return;
  }
  free_blocks_[block].push_back(ptr);
  cached_bytes_ += block;
}

void CpuAllocator::release_cached_locked() {
  for (auto& [block, list] : free_blocks_) {
    for (void* ptr : list) std::free(ptr);
    stats_.reserved_bytes -= block * list.size();
  }
  free_blocks_.clear();
  cached_bytes_ = 0;
}

void CpuAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_locked();
}

size_t CpuAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_bytes_;
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
  // Never destroyed: tensors held by other static objects may be freed after main returns, in
  // any order. Its blocks stay reachable through it, so LeakSanitizer does not count them as
  // leaks; release_cached() returns them earlier where that matters.
  static CpuAllocator* allocator = new CpuAllocator();
  return *allocator;
}

#ifndef FFR_WITH_CUDA
Allocator& pinned_allocator() { return cpu_allocator(); }
Allocator& cuda_allocator(int) { FFR_FAIL("this build has no CUDA backend"); }
#endif

Allocator& allocator_for(Device device) {
  return device.is_cuda() ? cuda_allocator(device.index) : cpu_allocator();
}

}  // namespace ffr
