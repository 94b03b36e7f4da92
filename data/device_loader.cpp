#include "data/device_loader.h"

#include "engine/error.h"
#include "kernels/normalize_images.h"

#include <cstring>
#include <vector>

#ifdef FFR_WITH_CUDA
#include "engine/cuda/context.h"
#endif

namespace ffr::data {

// The CUDA side of the loader, per ring slot j: the host slot's uint8 pixels go to a device
// staging buffer j on the loader's own copy stream; an event behind that copy makes the compute
// stream wait (cudaStreamWaitEvent: no host sync) before normalize_images turns the pixels into
// the float32 batch. The copy of batch k+1 thus overlaps the compute of batch k.
//
// Reuse, without a host-wide sync:
// - host slot j is refilled by a worker only after `released[j]`, recorded on the compute stream
//   behind the batch's last reader of slot j (the normalisation and the label copies);
// - device staging j is overwritten only after the copy stream has waited on `released[j]` too
//   (recorded once when the buffer is allocated, so a recycled block's earlier readers finish first).
struct DeviceLoader::CopyFences {
#ifdef FFR_WITH_CUDA
  std::vector<cudaEvent_t> released, copied;
  std::vector<char> recorded;  // char, not bool: threads touch different entries, never shared bits
  std::vector<Tensor> staging;  // device uint8 pixels per slot (held as int64 words: no uint8 dtype)
  cudaStream_t copy_stream = nullptr;
  int copy_device = -1;

  explicit CopyFences(int slots)
      : released(size_t(slots), nullptr), copied(size_t(slots), nullptr), recorded(size_t(slots), 0),
        staging(size_t(slots)) {
    for (cudaEvent_t& e : released) FFR_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    for (cudaEvent_t& e : copied) FFR_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~CopyFences() {
    if (copy_stream != nullptr) {
      FFR_CUDA_WARN(cudaStreamSynchronize(copy_stream));  // no copy still reading a slot we free
      FFR_CUDA_WARN(cudaStreamDestroy(copy_stream));
    }
    for (cudaEvent_t e : released) FFR_CUDA_WARN(cudaEventDestroy(e));
    for (cudaEvent_t e : copied) FFR_CUDA_WARN(cudaEventDestroy(e));
  }
  CopyFences(const CopyFences&) = delete;
  CopyFences& operator=(const CopyFences&) = delete;

  // The consumer thread's copy stream, made on first use on that thread's device.
  cudaStream_t stream_for(int device) {
    if (copy_stream == nullptr) {
      copy_device = device;
      FFR_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
    }
    FFR_CHECK(device == copy_device, "DeviceLoader: next() on device ", device, ", the copy stream is on ", copy_device);
    return copy_stream;
  }

  // Queues slot's pixels (bytes) to the device on the copy stream and makes the compute stream
  // wait for them; returns the device pixels.
  const uint8_t* upload(int slot, const uint8_t* host, size_t bytes, Device device) {
    const size_t j = size_t(slot);
    cudaStream_t copy = stream_for(cuda::context().device);
    const int64_t words = int64_t((bytes + 7) / 8);
    if (!staging[j].defined() || staging[j].numel() < words) {
      staging[j] = Tensor::empty({words}, DType::Int64, device);
      FFR_CUDA_CHECK(cudaEventRecord(released[j], cuda::stream()));  // after the block's earlier users
    }
    FFR_CUDA_CHECK(cudaStreamWaitEvent(copy, released[j], 0));
    FFR_CUDA_CHECK(cudaMemcpyAsync(staging[j].raw_data(), host, bytes, cudaMemcpyHostToDevice, copy));
    FFR_CUDA_CHECK(cudaEventRecord(copied[j], copy));
    FFR_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(), copied[j], 0));
    return static_cast<const uint8_t*>(staging[j].raw_data());
  }

  // Called on the consumer thread after everything reading `slot` was queued on the compute stream.
  void record(int slot) {
    FFR_CUDA_CHECK(cudaEventRecord(released[size_t(slot)], cuda::stream()));
    recorded[size_t(slot)] = 1;  // read by the worker only after the loader's mutex hand-over
  }
  // Called on a worker before it overwrites `slot`.
  void wait(int slot) {
    if (recorded[size_t(slot)]) FFR_CUDA_CHECK(cudaEventSynchronize(released[size_t(slot)]));
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
    : device_(device), affine_(pixel_affine(config.normalization)) {
  if (device_.is_cuda()) {
    fences_ = std::make_unique<CopyFences>(config.prefetch_batches);
    if (!config.allocator) config.allocator = pinned_block;
    config.uint8_pixels = true;  // normalised on the GPU: a quarter of the bytes over PCIe
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
  if (host->pixels != nullptr) {
#ifdef FFR_WITH_CUDA
    const size_t bytes = size_t(n) * 3 * size_t(s) * size_t(s);
    const uint8_t* pixels = fences_->upload(host->slot, host->pixels, bytes, device_);
    batch.images = Tensor::empty({n, 3, s, s}, DType::Float32, device_);
    normalize_images_cuda(pixels, batch.images.data<float>(), n, int64_t(s) * s, affine_);
#else
    FFR_FAIL("DeviceLoader: uint8 pixels without CUDA");
#endif
  } else {
    batch.images = to_device(host->images, {n, 3, s, s}, DType::Float32, device_);
  }
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
