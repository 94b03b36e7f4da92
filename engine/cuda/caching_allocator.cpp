// The CUDA caching allocator: a BlockPool (engine/block_pool.h: size classes, splitting,
// merging, stream-tagged blocks, event-gated reuse across streams) over the CUDA runtime.
//
// A block is tagged with the stream of the thread that allocates it (this thread's context for
// the allocator's device) and freed with the stream of the thread that drops it, so threads that
// each run their own model on their own stream never hand each other memory that queued kernels
// still read. Every call that needs a current device sets it with a DeviceGuard and restores it.
#include "engine/allocator.h"
#include "engine/block_pool.h"
#include "engine/cuda/allocators.h"
#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/device.h"

#include <map>
#include <memory>
#include <mutex>
#include <new>

namespace ffr {

namespace {

class CudaBlockDriver final : public BlockDriver {
 public:
  explicit CudaBlockDriver(int device) : device_(device) {}

  void* malloc(size_t bytes) override {
    DeviceGuard guard(Device::cuda(device_));
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // an expected failure: do not leave it for the next launch check
      return nullptr;
    }
    FFR_CUDA_CHECK(status);
    return ptr;
  }

  void free(void* ptr) override {
    DeviceGuard guard(Device::cuda(device_));
    FFR_CUDA_CHECK(cudaFree(ptr));
  }

  EventId create_event() noexcept override {
    DeviceGuard guard(Device::cuda(device_), std::nothrow);  // an event belongs to the current device
    cudaEvent_t event = nullptr;
    const cudaError_t status = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      cuda::warn_failed_call("cudaEventCreateWithFlags", int(status), __FILE__, __LINE__);
      return nullptr;
    }
    return event;
  }

  void destroy_event(EventId event) noexcept override {
    FFR_CUDA_WARN(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
  }

  bool record_event(EventId event, StreamId stream) noexcept override {
    const cudaError_t status =
        cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(const_cast<void*>(stream)));
    if (status == cudaSuccess) return true;
    (void)cudaGetLastError();
    cuda::warn_failed_call("cudaEventRecord", int(status), __FILE__, __LINE__);
    return false;
  }

  bool event_done(EventId event) override {
    const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (status == cudaErrorNotReady) {
      (void)cudaGetLastError();  // "not ready" is no error: do not leave it for the next launch check
      return false;
    }
    FFR_CUDA_CHECK(status);
    return true;
  }

  void synchronize() override {
    DeviceGuard guard(Device::cuda(device_));
    FFR_CUDA_CHECK(cudaDeviceSynchronize());
  }

 private:
  int device_;
};

class CudaCachingAllocator : public Allocator {
 public:
  explicit CudaCachingAllocator(int device) : device_(device), driver_(device), pool_(driver_) {}

  void* allocate(size_t bytes) override {
    const cudaStream_t stream = cuda::context(device_).stream;  // before the lock: may make the context
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t size = BlockPool::round_size(bytes);
    const size_t allocated = pool_.stats().allocated_bytes;
    if (limit_ != 0 && (size > limit_ || allocated > limit_ - size)) {
      throw_oom(bytes, limit_ > allocated ? limit_ - allocated : 0, "the allocator's limit");
    }
    void* ptr = pool_.allocate(bytes, stream);
    if (ptr == nullptr) {
      size_t free_bytes = 0, total_bytes = 0;
      DeviceGuard guard(Device::cuda(device_));
      FFR_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
      throw_oom(bytes, free_bytes, "the GPU");
    }
    return ptr;
  }

  void deallocate(void* ptr, size_t) override {
    if (ptr == nullptr) return;
    // The freeing thread's stream, if it has one on this device (a thread without a context has
    // queued nothing there); never made here: this runs in destructors.
    const cuda::Context* ctx = cuda::existing_context(device_);
    const StreamId freeing_stream = ctx != nullptr ? ctx->stream : kIdleStream;
    std::lock_guard<std::mutex> lock(mutex_);
    pool_.deallocate(ptr, freeing_stream);  // false: not ours, nothing sensible to do in a destructor
  }

  MemoryStats stats() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return pool_.stats();
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mutex_);
    pool_.reset_peak();
  }

  void release_cached() override {
    std::lock_guard<std::mutex> lock(mutex_);
    pool_.release_cached();
  }

  void set_limit(size_t bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
  }

  Device device() const override { return Device::cuda(device_); }

  void retire_stream(cudaStream_t stream) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    pool_.retire_stream(stream);
  }

 private:
  [[noreturn]] void throw_oom(size_t requested, size_t free_bytes, const char* where) {
    const MemoryStats& stats = pool_.stats();
    std::string message = detail::concat(
        "CUDA out of memory on cuda:", device_, ": requested ", requested, " bytes, ", free_bytes,
        " bytes free on ", where, " (", stats.allocated_bytes, " bytes held by tensors, ",
        stats.reserved_bytes - stats.allocated_bytes, " cached); try a smaller batch");
    const std::string& op = current_op_description();
    if (!op.empty()) message += " [in op " + op + "]";
    throw OutOfMemoryError(message, requested, free_bytes);
  }

  int device_;
  mutable std::mutex mutex_;
  CudaBlockDriver driver_;
  BlockPool pool_;
  size_t limit_ = 0;
};

CudaCachingAllocator& caching_allocator(int device) {
  static std::mutex mutex;
  // Never destroyed: freeing device memory during static destruction races the CUDA runtime's
  // own teardown; the OS reclaims everything at exit.
  static auto* allocators = new std::map<int, std::unique_ptr<CudaCachingAllocator>>();
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = (*allocators)[device];
  if (!slot) slot = std::make_unique<CudaCachingAllocator>(device);
  return *slot;
}

}  // namespace

Allocator& cuda_allocator(int device) { return caching_allocator(device); }

namespace cuda {

void retire_stream(int device, cudaStream_t stream) noexcept {
  try {
    caching_allocator(device).retire_stream(stream);
  } catch (...) {
    // Only a failed lock can land here; the stream's blocks then stay tagged with it (safe).
  }
}

}  // namespace cuda

}  // namespace ffr
