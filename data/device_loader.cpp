#include "data/device_loader.h"

#include "engine/error.h"

#include <cstring>
#include <vector>

#ifdef FFR_WITH_CUDA
#include "engine/cuda/context.h"
#endif

namespace ffr::data {

// Tells a worker when the GPU has finished reading a ring buffer. Events, not a stream sync:
// the consumer thread never blocks on the device, only the worker that wants the buffer back.
struct DeviceLoader::CopyFences {
#ifdef FFR_WITH_CUDA
  std::vector<cudaEvent_t> events;
  std::vector<char> recorded;  // char, not bool: threads touch different entries, never shared bits

  explicit CopyFences(int slots) : events(size_t(slots), nullptr), recorded(size_t(slots), 0) {
    for (cudaEvent_t& e : events) FFR_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~CopyFences() {
    for (cudaEvent_t e : events) FFR_CUDA_WARN(cudaEventDestroy(e));
  }
  // Called on the consumer thread right after the copies out of `slot` were queued.
  void record(int slot) {
    FFR_CUDA_CHECK(cudaEventRecord(events[size_t(slot)], cuda::stream()));
    recorded[size_t(slot)] = 1;  // read by the worker only after the loader's mutex hand-over
  }
  // Called on a worker before it overwrites `slot`.
  void wait(int slot) {
    if (recorded[size_t(slot)]) FFR_CUDA_CHECK(cudaEventSynchronize(events[size_t(slot)]));
  }
#else
  explicit CopyFences(int) {}
  void record(int) {}
  void wait(int) {}
#endif
};

namespace {

// Ring buffers as pinned tensors, kept alive by the shared_ptr's deleter.
std::shared_ptr<void> pinned_block(size_t bytes) {
  Tensor t = Tensor::empty_pinned({int64_t((bytes + 7) / 8)}, DType::Int64);
  return std::shared_ptr<void>(t.raw_data(), [t](void*) {});
}

Tensor to_device(const void* host, const Shape& shape, DType dtype, Device device) {
  const Tensor view = Tensor::from_blob(const_cast<void*>(host), shape, dtype, Device::cpu());
  Tensor out = Tensor::empty(shape, dtype, device);
  copy_async(out, view);  // CPU target: a plain memcpy, done on return
  return out;
}

}  // namespace

DeviceLoader::DeviceLoader(const Manifest& manifest, std::shared_ptr<const Sampler> sampler, LoaderConfig config,
                           Device device, SamplerPosition start, int64_t end_epoch)
    : device_(device) {
  if (device_.is_cuda()) {
    fences_ = std::make_unique<CopyFences>(config.prefetch_batches);
    if (!config.allocator) config.allocator = pinned_block;
    CopyFences* fences = fences_.get();
    auto previous = config.before_refill;
    config.before_refill = [fences, previous](int slot) {
      fences->wait(slot);
      if (previous) previous(slot);
    };
  }
  loader_ = std::make_unique<Loader>(manifest, std::move(sampler), std::move(config), start, end_epoch);
}

DeviceLoader::~DeviceLoader() {
  loader_.reset();  // join the workers before the events they may wait on go away
}

std::optional<DeviceBatch> DeviceLoader::next() {
  const HostBatch* host = loader_->next();
  if (!host) return std::nullopt;
  DeviceBatch batch;
  batch.position = host->position;
  batch.last_in_epoch = host->last_in_epoch;
  batch.size = host->size;
  const int64_t n = host->size, s = host->image_size;
  batch.images = to_device(host->images, {n, 3, s, s}, DType::Float32, device_);
  batch.y = to_device(host->y, {n}, DType::Int64, device_);
  batch.b = to_device(host->b, {n}, DType::Int64, device_);
  batch.source = to_device(host->source, {n}, DType::Int64, device_);
  batch.group = to_device(host->group, {n}, DType::Int64, device_);
  batch.group_with_source = to_device(host->group_with_source, {n}, DType::Int64, device_);
  batch.index = to_device(host->index, {n}, DType::Int64, Device::cpu());
  if (fences_) fences_->record(host->slot);
  return batch;
}

}  // namespace ffr::data
