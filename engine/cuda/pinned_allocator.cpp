// Page-locked host memory for async host->device copies. A freed block may still be read by a
// copy in flight, so it is reused only after an event recorded at free time has completed.
// Without a GPU at run time it hands out ordinary host memory.
#include "engine/allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/context.h"

#include <list>
#include <mutex>
#include <unordered_map>

namespace ffr {

namespace {

class PinnedAllocator : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    if (!cuda_available()) return cpu_allocator().allocate(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    if (limit_ != 0 && stats_.allocated_bytes + bytes > limit_) {
      throw OutOfMemoryError(detail::concat("pinned host memory: requested ", bytes,
                                            " bytes over the allocator limit; try a smaller batch"),
                             bytes, limit_ - stats_.allocated_bytes);
    }
    void* ptr = nullptr;
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->bytes < bytes || it->bytes > 2 * bytes) continue;
      const cudaError_t ready = cudaEventQuery(it->event);
      if (ready == cudaErrorNotReady) continue;
      FFR_CUDA_CHECK(ready);
      FFR_CUDA_CHECK(cudaEventDestroy(it->event));
      ptr = it->ptr;
      sizes_[ptr] = it->bytes;
      stats_.record_allocation(it->bytes, 0);
      free_.erase(it);
      break;
    }
    if (ptr == nullptr) {
      FFR_CUDA_CHECK(cudaHostAlloc(&ptr, bytes, cudaHostAllocDefault));
      sizes_[ptr] = bytes;
      stats_.record_allocation(bytes, bytes);
    }
    return ptr;
  }

  void deallocate(void* ptr, size_t bytes) override {
    if (!cuda_available()) return cpu_allocator().deallocate(ptr, bytes);
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sizes_.find(ptr);
    if (it == sizes_.end()) return;
    cudaEvent_t event;
    FFR_CUDA_WARN(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    FFR_CUDA_WARN(cudaEventRecord(event, cuda::stream()));
    free_.push_back({ptr, it->second, event});
    stats_.allocated_bytes -= it->second;
    sizes_.erase(it);
  }

  MemoryStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.reset_peak();
  }
  void set_limit(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
  }
  Device device() const override { return Device::cpu(); }

 private:
  struct FreeBlock {
    void* ptr;
    size_t bytes;
    cudaEvent_t event;
  };
  mutable std::mutex mutex_;
  std::list<FreeBlock> free_;
  std::unordered_map<void*, size_t> sizes_;
  MemoryStats stats_;
  size_t limit_ = 0;
};

}  // namespace

Allocator& pinned_allocator() {
  static auto* allocator = new PinnedAllocator();  // never destroyed: see cuda_allocator()
  return *allocator;
}

}  // namespace ffr
