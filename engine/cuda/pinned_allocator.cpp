// Page-locked host memory for async host<->device copies. A freed block may still be read or
// written by a copy in flight, so every async copy through copy_bytes records an event for the
// block on its stream (record_pinned_use), the freeing thread adds one on its own streams, and a
// cached block is reused or returned to the OS only once all its events have completed (queried,
// never waited for). Freeing never makes a CUDA context or throws. The cache is capped
// (kCacheCap) and release_cached() empties it. Without a GPU at run time it hands out ordinary
// host memory.
#include "engine/allocator.h"
#include "engine/cuda/allocators.h"
#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/device.h"

#include <list>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace ffr {

namespace {

// Cached (free) pinned bytes kept beyond this are returned to the OS at the next allocation.
constexpr size_t kCacheCap = size_t(1) << 30;

// An event per (device, stream) that used a block; a newer use on the same stream re-records it.
struct Use {
  int device;
  cudaStream_t stream;
  cudaEvent_t event;
};

class PinnedAllocator : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    if (!cuda_available()) return cpu_allocator().allocate(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    if (limit_ != 0 && (bytes > limit_ || stats_.allocated_bytes > limit_ - bytes)) {
      throw OutOfMemoryError(detail::concat("pinned host memory: requested ", bytes,
                                            " bytes over the allocator limit; try a smaller batch"),
                             bytes, limit_ > stats_.allocated_bytes ? limit_ - stats_.allocated_bytes : 0);
    }
    void* ptr = take_cached(bytes);
    if (ptr == nullptr) ptr = os_allocate(bytes);
    trim(kCacheCap);
    return ptr;
  }

  void deallocate(void* ptr, size_t bytes) override {
    if (!cuda_available()) return cpu_allocator().deallocate(ptr, bytes);
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.find(static_cast<char*>(ptr));
    if (it == blocks_.end() || !it->second.in_use) return;
    Block& block = it->second;
    // Copies this thread queued without copy_bytes are covered too: an event on each stream it
    // has. A thread without a context has queued nothing, and none is made for it here.
    for (int device = 0; device < cuda_device_count(); ++device) {
      if (const cuda::Context* ctx = cuda::existing_context(device)) note_use(block, device, ctx->stream);
    }
    block.in_use = false;
    stats_.allocated_bytes -= block.bytes;
    cached_.push_back(it->first);
  }

  void record_use(const void* host, cudaStream_t stream, int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.upper_bound(static_cast<char*>(const_cast<void*>(host)));
    if (it == blocks_.begin()) return;
    --it;
    if (static_cast<const char*>(host) >= it->first + it->second.bytes) return;  // not pinned memory
    note_use(it->second, device, stream);
  }

  MemoryStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.reset_peak();
  }
  void release_cached() override {
    if (!cuda_available()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    trim(0);
  }
  void set_limit(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
  }
  Device device() const override { return Device::cpu(); }

 private:
  struct Block {
    size_t bytes = 0;
    bool in_use = false;
    std::vector<Use> uses;
  };

  // Records (or re-records) the block's event for `stream`. Runs in free paths: never throws; if
  // no event can be recorded the block is marked unusable rather than risk a copy in flight.
  void note_use(Block& block, int device, cudaStream_t stream) noexcept {
    for (Use& use : block.uses) {
      if (use.stream == stream && use.device == device) {
        if (!record(use.event, stream)) block.uses.push_back({device, stream, nullptr});
        return;
      }
    }
    cudaEvent_t event = nullptr;
    {
      DeviceGuard guard(Device::cuda(device), std::nothrow);
      const cudaError_t status = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
      if (status != cudaSuccess) {
        (void)cudaGetLastError();
        cuda::warn_failed_call("cudaEventCreateWithFlags", int(status), __FILE__, __LINE__);
        event = nullptr;
      }
    }
    if (event != nullptr && !record(event, stream)) {
      FFR_CUDA_WARN(cudaEventDestroy(event));
      event = nullptr;
    }
    try {
      block.uses.push_back({device, stream, event});  // event nullptr: never known to be done
    } catch (...) {
    }
  }

  static bool record(cudaEvent_t event, cudaStream_t stream) noexcept {
    const cudaError_t status = cudaEventRecord(event, stream);
    if (status == cudaSuccess) return true;
    (void)cudaGetLastError();
    cuda::warn_failed_call("cudaEventRecord", int(status), __FILE__, __LINE__);
    return false;
  }

  // All copies that used the block have completed (non-blocking).
  static bool idle(const Block& block) {
    for (const Use& use : block.uses) {
      if (use.event == nullptr) return false;
      const cudaError_t ready = cudaEventQuery(use.event);
      if (ready == cudaErrorNotReady) {
        (void)cudaGetLastError();  // "not ready" is no error: do not leave it for the next launch check
        return false;
      }
      FFR_CUDA_CHECK(ready);
    }
    return true;
  }

  static void forget_uses(Block& block) {
    for (const Use& use : block.uses) {
      if (use.event != nullptr) FFR_CUDA_WARN(cudaEventDestroy(use.event));
    }
    block.uses.clear();
  }

  // A cached block of `bytes` to 2x `bytes` whose copies have completed.
  void* take_cached(size_t bytes) {
    for (auto it = cached_.begin(); it != cached_.end(); ++it) {
      Block& block = blocks_.at(*it);
      if (block.bytes < bytes || block.bytes > 2 * bytes || !idle(block)) continue;
      forget_uses(block);
      block.in_use = true;
      stats_.record_allocation(block.bytes, 0);
      void* ptr = *it;
      cached_.erase(it);
      return ptr;
    }
    return nullptr;
  }

  void* os_allocate(size_t bytes) {
    void* ptr = nullptr;
    cudaError_t status = cudaHostAlloc(&ptr, bytes, cudaHostAllocDefault);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      trim(0);  // retry once without the cache
      status = cudaHostAlloc(&ptr, bytes, cudaHostAllocDefault);
    }
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      throw OutOfMemoryError(detail::concat("pinned host memory: cudaHostAlloc of ", bytes,
                                            " bytes failed; try a smaller batch"),
                             bytes, 0);
    }
    FFR_CUDA_CHECK(status);
    Block& block = blocks_[static_cast<char*>(ptr)];
    block.bytes = bytes;
    block.in_use = true;
    stats_.record_allocation(bytes, bytes);
    return ptr;
  }

  // Returns cached blocks whose copies have completed to the OS, oldest first, until at most
  // `keep` cached bytes remain.
  void trim(size_t keep) {
    size_t cached_bytes = stats_.reserved_bytes - stats_.allocated_bytes;
    for (auto it = cached_.begin(); it != cached_.end() && cached_bytes > keep;) {
      auto block = blocks_.find(*it);
      if (!idle(block->second)) {
        ++it;
        continue;
      }
      forget_uses(block->second);
      FFR_CUDA_CHECK(cudaFreeHost(*it));
      stats_.reserved_bytes -= block->second.bytes;
      cached_bytes -= block->second.bytes;
      blocks_.erase(block);
      it = cached_.erase(it);
    }
  }

  mutable std::mutex mutex_;
  std::map<char*, Block> blocks_;  // every pinned block, by address
  std::list<char*> cached_;        // the free ones, oldest first
  MemoryStats stats_;
  size_t limit_ = 0;
};

PinnedAllocator& pinned() {
  static auto* allocator = new PinnedAllocator();  // never destroyed: see cuda_allocator()
  return *allocator;
}

}  // namespace

Allocator& pinned_allocator() { return pinned(); }

namespace cuda {

void record_pinned_use(const void* host, cudaStream_t stream, int device) {
  if (host == nullptr) return;
  pinned().record_use(host, stream, device);
}

}  // namespace cuda

}  // namespace ffr
