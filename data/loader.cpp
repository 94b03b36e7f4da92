#include "data/loader.h"

#include "engine/error.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>

namespace ffr::data {

namespace {

constexpr int kLabelArrays = 6;  // index, y, b, source, group, group_with_source

std::shared_ptr<void> heap_block(size_t bytes) {
  // 64-byte alignment keeps every image plane vector-friendly.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<void>(p, std::free);
}

}  // namespace

Loader::Loader(const Manifest& manifest, std::shared_ptr<const Sampler> sampler, LoaderConfig config,
               SamplerPosition start, int64_t end_epoch)
    : manifest_(manifest),
      sampler_(std::move(sampler)),
      config_(std::move(config)),
      groups_(manifest.info),
      start_(start) {
  FFR_CHECK(sampler_ != nullptr, "Loader: no sampler");
  if (config_.image_size <= 0) throw InputError(detail::concat("image size must be positive, got ", config_.image_size));
  if (config_.workers <= 0) throw InputError(detail::concat("workers must be positive, got ", config_.workers));
  if (config_.prefetch_batches <= 0) {
    throw InputError(detail::concat("prefetch batches must be positive, got ", config_.prefetch_batches));
  }
  const int64_t per_epoch = sampler_->batches_per_epoch();
  FFR_CHECK(start.step >= 0 && (per_epoch == 0 || start.step < per_epoch), "Loader: start step ", start.step,
            " outside an epoch of ", per_epoch, " batches");
  if (per_epoch == 0) {
    total_batches_ = 0;
  } else if (end_epoch == kEndless) {
    total_batches_ = INT64_MAX;
  } else {
    if (end_epoch == kEndOfStartEpoch) end_epoch = start.epoch + 1;
    total_batches_ = std::max<int64_t>(0, (end_epoch - start.epoch) * per_epoch - start.step);
  }

  const int64_t capacity = sampler_->batch_size();
  const size_t image_bytes = size_t(capacity) * 3 * config_.image_size * config_.image_size *
                            (config_.uint8_pixels ? sizeof(uint8_t) : sizeof(float));
  const size_t label_bytes = size_t(capacity) * kLabelArrays * sizeof(int64_t);
  const HostAllocator allocate = config_.allocator ? config_.allocator : HostAllocator(heap_block);
  slots_.resize(size_t(config_.prefetch_batches));
  for (size_t s = 0; s < slots_.size(); ++s) {
    Slot& slot = slots_[s];
    slot.image_memory = allocate(image_bytes);
    slot.label_memory = allocate(label_bytes);
    const auto* labels = static_cast<int64_t*>(slot.label_memory.get());
    HostBatch& batch = slot.batch;
    batch.slot = int(s);
    batch.image_size = config_.image_size;
    if (config_.uint8_pixels) {
      batch.pixels = static_cast<uint8_t*>(slot.image_memory.get());
    } else {
      batch.images = static_cast<float*>(slot.image_memory.get());
    }
    batch.index = labels;
    batch.y = labels + capacity;
    batch.b = labels + 2 * capacity;
    batch.source = labels + 3 * capacity;
    batch.group = labels + 4 * capacity;
    batch.group_with_source = labels + 5 * capacity;
  }
  for (int w = 0; w < config_.workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

SamplerPosition Loader::position_of(int64_t k) const {
  const int64_t per_epoch = sampler_->batches_per_epoch();
  const int64_t step = start_.step + k;
  return {start_.epoch + step / per_epoch, step % per_epoch};
}

std::shared_ptr<const IndexList> Loader::epoch_order(int64_t epoch) {
  std::lock_guard<std::mutex> lock(orders_mutex_);
  auto it = epoch_orders_.find(epoch);
  if (it != epoch_orders_.end()) return it->second;
  // Epochs two behind are finished (the ring holds a few batches); an order dropped too early is
  // just computed again, identically.
  epoch_orders_.erase(epoch_orders_.begin(), epoch_orders_.lower_bound(epoch - 1));
  auto order = std::make_shared<const IndexList>(sampler_->epoch_order(epoch));
  epoch_orders_[epoch] = order;
  return order;
}

void Loader::fill(int64_t k, Slot& slot) {
  HostBatch& batch = slot.batch;
  batch.position = position_of(k);
  batch.last_in_epoch = batch.position.step == sampler_->batches_per_epoch() - 1;
  const IndexList indices = sampler_->batch(*epoch_order(batch.position.epoch), batch.position.step);
  batch.size = int64_t(indices.size());

  const size_t image_floats = size_t(3) * config_.image_size * config_.image_size;
  auto* images = const_cast<float*>(batch.images);  // the slot's own memory, written only here
  auto* pixels = const_cast<uint8_t*>(batch.pixels);
  auto* labels = const_cast<int64_t*>(batch.index);
  const int64_t capacity = sampler_->batch_size();
  for (size_t j = 0; j < indices.size(); ++j) {
    const size_t i = size_t(indices[j]);
    const Sample& s = manifest_.samples[i];
    const RgbImage image = read_image(manifest_.image_path(i), manifest_.where(i));
    if (pixels != nullptr) {
      resize_into(image, config_.image_size, pixels + j * image_floats);  // as many bytes as floats
    } else {
      preprocess_into(image, config_.image_size, config_.normalization, images + j * image_floats);
    }
    labels[j] = int64_t(i);
    labels[capacity + j] = s.y;
    labels[2 * capacity + j] = s.b;
    labels[3 * capacity + j] = s.source == Source::Synthetic ? 1 : 0;
    labels[4 * capacity + j] = groups_.group_of(s);
    labels[5 * capacity + j] = groups_.group_with_source(s.y, s.b, s.source);
  }
}

namespace {

// Decoding threads and compute threads share the cores. The compute threads (engine/parallel.h,
// one per core by default) run in lock-step: a parallel loop ends when its slowest thread does,
// so a decoder that takes a core from one of them for a time slice stalls them all. The loader
// runs ahead of the trainer (prefetch_batches), so its threads need not be fast, only done in
// time: they run at a lower priority (nice +10, about a tenth of a core's share under
// contention), fill the gaps the compute threads leave (serial code, optimizer, evaluation,
// host-side bookkeeping), and take a full core when the trainer waits for a batch. This beats
// halving the compute threads for the loader on a small machine, where compute is most of the step.
void lower_decoder_priority() {
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  if (errno == 0) setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), std::min(current + 10, 19));
}

}  // namespace

void Loader::worker_loop() {
  lower_decoder_priority();  // Linux: per-thread nice
  const int64_t ring = int64_t(slots_.size());
  for (;;) {
    int64_t k;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Back-pressure: batch k reuses the buffer of batch k - ring, so it waits until the
      // consumer has handed that one back.
      work_cv_.wait(lock, [&] { return stop_ || (next_to_fill_ < total_batches_ && next_to_fill_ < consumed_ + ring); });
      if (stop_) return;
      k = next_to_fill_++;
    }
    Slot& slot = slots_[size_t(k % ring)];
    std::exception_ptr error;
    try {
      if (config_.before_refill) config_.before_refill(int(k % ring));
      fill(k, slot);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slot.error = error;
      slot.filled = k;
    }
    ready_cv_.notify_all();
  }
}

const HostBatch* Loader::next() {
  const int64_t ring = int64_t(slots_.size());
  std::unique_lock<std::mutex> lock(mutex_);
  if (current_ >= 0) {
    consumed_ = current_ + 1;  // hand the previous buffer back
    work_cv_.notify_all();
  }
  const int64_t k = current_ + 1;
  if (k >= total_batches_) return nullptr;
  Slot& slot = slots_[size_t(k % ring)];
  ready_cv_.wait(lock, [&] { return slot.filled == k; });
  current_ = k;
  if (slot.error) {
    // Rethrown every time this batch is asked for: the loader cannot go past a broken batch.
    current_ = k - 1;
    std::rethrow_exception(slot.error);
  }
  return &slot.batch;
}

}  // namespace ffr::data
