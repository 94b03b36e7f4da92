// The loader's last step: batches in pinned host memory (page-locked when a GPU exists) copied
// asynchronously to the training device. On CUDA the images travel as resized uint8 pixels (a
// quarter of float32's bytes) on the loader's own copy stream, so the copy of batch k+1 overlaps
// the compute of batch k; the compute stream waits for the copy through an event (no host sync)
// and normalises the pixels there (kernels/normalize_images.h), bit for bit as the CPU path does.
// A ring buffer is handed back to the decoding workers only once the GPU has finished reading it
// (a CUDA event per buffer), never by a host-wide sync. On a CPU-only machine the batch is
// copied into fresh CPU tensors.
#pragma once

#include "data/loader.h"
#include "engine/tensor.h"
#include "kernels/normalize_images.h"

#include <memory>
#include <optional>

namespace ffr::data {

struct DeviceBatch {
  SamplerPosition position;
  bool last_in_epoch = false;
  int64_t size = 0;
  Tensor images;             // float32 [size, 3, S, S], normalised, on the device
  Tensor y, b, source;       // int64 [size]; source: 0 real, 1 synthetic
  Tensor group;              // int64 [size], (y, b) group id
  Tensor group_with_source;  // int64 [size], (y, b, g) group id
  Tensor index;              // int64 [size], manifest index (host-side bookkeeping: stays on the CPU)
};

class DeviceLoader {
 public:
  // As Loader, plus the device the batches go to (default_device() for the usual case).
  DeviceLoader(const Manifest& manifest, std::shared_ptr<const Sampler> sampler, LoaderConfig config, Device device,
               SamplerPosition start = {}, int64_t end_epoch = Loader::kEndOfStartEpoch);
  ~DeviceLoader();
  DeviceLoader(const DeviceLoader&) = delete;
  DeviceLoader& operator=(const DeviceLoader&) = delete;

  // The next batch on the device (copies queued, not waited for), or nullopt after the last.
  std::optional<DeviceBatch> next();

  Device device() const { return device_; }
  const Loader& host_loader() const { return *loader_; }

 private:
  struct CopyFences;  // one CUDA event per ring buffer (empty without CUDA)

  Device device_;
  PixelAffine affine_;  // the normalisation, for the GPU path
  std::unique_ptr<CopyFences> fences_;
  std::unique_ptr<Loader> loader_;
};

}  // namespace ffr::data
