// Internal: the host allocator's class (tests use it directly to simulate exhaustion).
#pragma once

#include "engine/allocator.h"

#include <mutex>

namespace ffr {

class CpuAllocator : public Allocator {
 public:
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  MemoryStats stats() const override;
  void reset_peak() override;
  void set_limit(size_t bytes) override;
  Device device() const override { return Device::cpu(); }

 private:
  mutable std::mutex mutex_;
  MemoryStats stats_;
  size_t limit_ = 0;
};

}  // namespace ffr
