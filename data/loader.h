// The prefetching loader, host side: N worker threads decode and preprocess batches ahead of the
// consumer into a ring of batch buffers. Batch k always holds the same samples in the same order
// (it is a pure function of the sampler and k), whichever worker fills it and whenever, so a run
// is reproducible regardless of thread timing. The ring bounds memory (back-pressure: a worker
// waits for the consumer to hand a buffer back); a worker's error is rethrown by the consumer
// when it reaches that batch, naming the image file and manifest line.
// The device step (pinned buffers, async copy to the GPU) is data/device_loader.h.
#pragma once

#include "data/manifest.h"
#include "data/preprocess.h"
#include "data/sampler.h"

#include <climits>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ffr::data {

// Where a buffer's host memory comes from: plain heap by default; the device loader passes pinned
// memory so copies to the GPU can be asynchronous. The shared_ptr owns the block.
using HostAllocator = std::function<std::shared_ptr<void>(size_t bytes)>;

struct LoaderConfig {
  int image_size = 224;   // model input side; images are resized to it
  int workers = 2;        // decoding threads
  int prefetch_batches = 4;  // ring size: batches decoded ahead, at most
  Normalization normalization = Normalization::imagenet();
  // Images as resized 8-bit pixels (HostBatch::pixels), left for the consumer to normalise (the
  // CUDA loader does it on the GPU, shipping a quarter of the bytes); HostBatch::images is then null.
  bool uint8_pixels = false;
  HostAllocator allocator;   // empty: heap
  // Called by a worker before it refills buffer `slot`: the device loader waits there for the
  // previous copy out of that buffer to finish.
  std::function<void(int slot)> before_refill;
};

// One batch in host memory, valid until the next call to Loader::next().
struct HostBatch {
  SamplerPosition position;
  bool last_in_epoch = false;
  int64_t size = 0;           // samples in this batch (the last batch of an epoch may be short)
  int image_size = 0;
  int slot = 0;               // ring buffer it lives in
  const float* images = nullptr;  // size x 3 x image_size x image_size, NCHW, normalised
  const uint8_t* pixels = nullptr;  // uint8_pixels: size x image_size x image_size x 3 (RGB), as resized
  // One int64 per sample each (int64 so they can be copied as-is into Int64 tensors).
  const int64_t* index = nullptr;              // manifest index
  const int64_t* y = nullptr;
  const int64_t* b = nullptr;
  const int64_t* source = nullptr;             // g: 0 real, 1 synthetic
  const int64_t* group = nullptr;              // (y, b) group id
  const int64_t* group_with_source = nullptr;  // (y, b, g) group id
};

class Loader {
 public:
  static constexpr int64_t kEndOfStartEpoch = -1;  // end_epoch default: finish start.epoch
  static constexpr int64_t kEndless = INT64_MAX;     // end_epoch: never stop

  // Iterates the sampler's batches from `start` up to (not including) the first batch of
  // `end_epoch`. `manifest` must outlive the loader.
  Loader(const Manifest& manifest, std::shared_ptr<const Sampler> sampler, LoaderConfig config,
         SamplerPosition start = {}, int64_t end_epoch = kEndOfStartEpoch);
  ~Loader();  // stops and joins the workers; safe with batches still in flight
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next batch, or nullptr after the last one. Hands the previous batch's buffer back.
  // Rethrows (as ffr::InputError etc.) an error a worker met while making this batch.
  const HostBatch* next();

  const LoaderConfig& config() const { return config_; }
  int64_t batch_capacity() const { return sampler_->batch_size(); }
  int64_t total_batches() const { return total_batches_; }  // INT64_MAX when endless

 private:
  struct Slot {
    std::shared_ptr<void> image_memory, label_memory;
    HostBatch batch;
    int64_t filled = -1;  // batch number it holds, once ready
    std::exception_ptr error;
  };

  void worker_loop();
  void fill(int64_t k, Slot& slot);
  std::shared_ptr<const IndexList> epoch_order(int64_t epoch);
  SamplerPosition position_of(int64_t k) const;

  const Manifest& manifest_;
  std::shared_ptr<const Sampler> sampler_;
  LoaderConfig config_;
  GroupIndex groups_;
  SamplerPosition start_;
  int64_t total_batches_;

  std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  bool stop_ = false;
  int64_t next_to_fill_ = 0;   // batch number the next idle worker takes
  int64_t consumed_ = 0;       // batches handed back by the consumer
  int64_t current_ = -1;       // batch the consumer holds
  std::vector<Slot> slots_;
  std::map<int64_t, std::shared_ptr<const IndexList>> epoch_orders_;  // guarded by orders_mutex_
  std::mutex orders_mutex_;
  std::vector<std::thread> workers_;
};

}  // namespace ffr::data
