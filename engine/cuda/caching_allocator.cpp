// The CUDA caching allocator.
//
// Sizes are rounded (512 B below 1 MiB, 2 MiB above) and freed blocks kept in a size-ordered
// pool. A request takes the smallest cached block that fits without wasting more than a quarter
// of it (small blocks: half), else goes to cudaMalloc. All of a thread's work runs on one stream
// in order, so a block freed by a tensor can be handed out again at once: any kernel that still
// reads it was queued before whatever the next owner queues.
#include "engine/allocator.h"
#include "engine/cuda/check.h"

#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace ffr {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t unit = bytes < kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + unit - 1) / unit * unit;
}

class CudaCachingAllocator : public Allocator {
 public:
  explicit CudaCachingAllocator(int device) : device_(device) {}

  void* allocate(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t size = round_size(bytes);
    if (limit_ != 0 && stats_.allocated_bytes + size > limit_) {
      throw_oom(bytes, limit_ - stats_.allocated_bytes, "the allocator's limit");
    }
    void* ptr = take_cached(size);
    if (ptr != nullptr) {
      stats_.record_allocation(in_use_.at(ptr), 0);
    } else {
      ptr = os_allocate(size, bytes);
      in_use_[ptr] = size;
      stats_.record_allocation(size, size);
    }
    return ptr;
  }

  void deallocate(void* ptr, size_t) override {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = in_use_.find(ptr);
    if (it == in_use_.end()) return;  // not ours: nothing sensible to do in a destructor path
    stats_.allocated_bytes -= it->second;
    free_.emplace(it->second, ptr);
    free_sizes_[ptr] = it->second;
    in_use_.erase(it);
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
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
  }

  void set_limit(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
  }

  Device device() const override { return Device::cuda(device_); }

 private:
  void* take_cached(size_t size) {
    auto it = free_.lower_bound(size);
    if (it == free_.end()) return nullptr;
    const size_t max_waste = size < kSmallLimit ? size : size / 4;
    if (it->first - size > max_waste) return nullptr;
    void* ptr = it->second;
    in_use_[ptr] = it->first;
    free_sizes_.erase(ptr);
    free_.erase(it);
    return ptr;
  }

  void* os_allocate(size_t size, size_t requested) {
    void* ptr = nullptr;
    FFR_CUDA_CHECK(cudaSetDevice(device_));
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the sticky-free error state before retrying
      release_cached_locked();
      status = cudaMalloc(&ptr, size);
    }
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      FFR_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      throw_oom(requested, free_bytes, "the GPU");
    }
    FFR_CUDA_CHECK(status);
    return ptr;
  }

  void release_cached_locked() {
    if (free_.empty()) return;
    FFR_CUDA_CHECK(cudaDeviceSynchronize());
    for (auto& [size, ptr] : free_) {
      FFR_CUDA_CHECK(cudaFree(ptr));
      stats_.reserved_bytes -= size;
      free_sizes_.erase(ptr);
    }
    free_.clear();
  }

  [[noreturn]] void throw_oom(size_t requested, size_t free_bytes, const char* where) {
    std::string message = detail::concat(
        "CUDA out of memory on cuda:", device_, ": requested ", requested, " bytes, ", free_bytes,
        " bytes free on ", where, " (", stats_.allocated_bytes, " bytes held by tensors, ",
        stats_.reserved_bytes - stats_.allocated_bytes, " cached); try a smaller batch");
    const std::string& op = current_op_description();
    if (!op.empty()) message += " [in op " + op + "]";
    throw OutOfMemoryError(message, requested, free_bytes);
  }

  int device_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> free_sizes_;
  std::unordered_map<void*, size_t> in_use_;
  MemoryStats stats_;
  size_t limit_ = 0;
};

}  // namespace

Allocator& cuda_allocator(int device) {
  static std::mutex mutex;
  // Never destroyed: freeing device memory during static destruction races the CUDA runtime's
  // own teardown; the OS reclaims everything at exit.
  static auto* allocators = new std::map<int, std::unique_ptr<CudaCachingAllocator>>();
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = (*allocators)[device];
  if (!slot) slot = std::make_unique<CudaCachingAllocator>(device);
  return *slot;
}

}  // namespace ffr
