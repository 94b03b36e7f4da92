// The bookkeeping of the CUDA caching allocator, kept free of CUDA so that it can be tested
// without a GPU: the device, its streams and events are reached through a BlockDriver (the CUDA
// runtime in engine/cuda/caching_allocator.cpp, a fake in tests/block_pool_test.cpp).
//
// The design is PyTorch's CUDACachingAllocator:
// - Sizes are rounded to 512 B. Requests up to 1 MiB come from the small pool, carved out of
//   2 MiB segments; larger ones from the large pool, out of 20 MiB segments below 10 MiB, else
//   from a segment of their own rounded to 2 MiB.
// - A request takes the smallest cached block that fits and splits off the rest when the rest is
//   worth keeping (small pool: >= 512 B, large pool: > 1 MiB); a freed block merges with free
//   neighbours in its segment, so reserved memory stays close to allocated memory.
// - Every segment belongs to one stream (the stream of the thread that first allocated from it).
//   Reuse on the same stream is immediate: whatever the next owner queues runs after the kernels
//   that used the block. A block freed from another stream (a tensor made by one thread, dropped
//   by another) returns to the pool only once an event recorded on the freeing stream has
//   completed. A segment that becomes entirely free gets an event on its stream; once that event
//   has completed (queried, never waited for) another stream may take the whole segment, so a
//   thread's cache is not stranded. A retired stream (its thread ended, its work synchronized)
//   gives its segments to any stream at once.
// - When the device is out of memory, only entirely free segments are released, behind one
//   device-wide synchronization, and only when there is such a segment; then the allocation is
//   retried once.
//
// Not thread-safe: the owner holds a mutex around every call.
#pragma once

#include "engine/allocator.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

namespace ffr {

using StreamId = const void*;  // opaque stream handle; kIdleStream: usable by any stream
using EventId = void*;         // opaque event handle
inline constexpr StreamId kIdleStream = nullptr;

// What the pool needs from a device. Calls made while freeing (create_event, record_event,
// destroy_event) run in destructor paths: they report failure by return value, never throw.
class BlockDriver {
 public:
  virtual ~BlockDriver() = default;
  // Device memory, or nullptr when the device is out of memory (other failures throw).
  virtual void* malloc(size_t bytes) = 0;
  virtual void free(void* ptr) = 0;
  // nullptr on failure.
  virtual EventId create_event() noexcept = 0;
  virtual void destroy_event(EventId event) noexcept = 0;
  // false on failure.
  virtual bool record_event(EventId event, StreamId stream) noexcept = 0;
  // Non-blocking: has everything queued before the event's record completed?
  virtual bool event_done(EventId event) = 0;
  // Waits for all work on the device.
  virtual void synchronize() = 0;
};

class BlockPool {
 public:
  static constexpr size_t kMinBlockSize = 512;            // every size is a multiple of this
  static constexpr size_t kSmallSize = size_t(1) << 20;   // largest request served by the small pool
  static constexpr size_t kSmallBuffer = size_t(2) << 20;   // small-pool segment size
  static constexpr size_t kLargeBuffer = size_t(20) << 20;  // segment for large requests below kMinLargeAlloc
  static constexpr size_t kMinLargeAlloc = size_t(10) << 20;
  static constexpr size_t kRoundLarge = size_t(2) << 20;    // larger requests: own segment, rounded to this

  explicit BlockPool(BlockDriver& driver);
  // Frees the pool's events and bookkeeping, not the device memory (the owner outlives its use).
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  static size_t round_size(size_t bytes);
  static size_t segment_size(size_t rounded);

  // A block of at least `bytes` for work queued on `stream`; nullptr when the device is out of
  // memory even after releasing the free segments.
  void* allocate(size_t bytes, StreamId stream);
  // `freeing_stream`: the stream of the thread that drops the block (kIdleStream when that
  // thread queued no work on this device). Returns false for a pointer the pool did not hand out.
  bool deallocate(void* ptr, StreamId freeing_stream) noexcept;
  // Returns the entirely free segments to the driver (one device synchronization, none when
  // there is nothing to release). Returns the bytes released.
  size_t release_cached();
  // `stream`'s work has completed and it is about to be destroyed: its segments become idle.
  void retire_stream(StreamId stream) noexcept;

  const MemoryStats& stats() const { return stats_; }
  void reset_peak() { stats_.reset_peak(); }
  // Size of the block handed out at `ptr` (0 if none).
  size_t block_size(const void* ptr) const;
  // Blocks freed from a foreign stream, waiting for their events.
  size_t pending_frees() const { return pending_.size(); }
  size_t segment_count() const { return segments_.size(); }

 private:
  struct Segment;
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;
    Segment* segment = nullptr;
    Block* prev = nullptr;  // neighbours in the segment
    Block* next = nullptr;
    bool allocated = false;
    bool in_pool = false;
    std::vector<EventId> pending;  // freed from a foreign stream: back to the pool once these complete
    EventId fence = nullptr;       // whole free segment: another stream may take it once this completes
  };
  struct Segment {
    char* base = nullptr;
    size_t size = 0;
    StreamId stream = kIdleStream;
    bool small = false;
    Block* head = nullptr;
  };
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BlockOrder>;

  Pool& pool_for(bool small) { return small ? small_pool_ : large_pool_; }
  Block* find_same_stream(Pool& pool, StreamId stream, size_t size);
  Block* find_handoff(Pool& pool, StreamId stream, size_t size);
  Block* new_segment(size_t size, StreamId stream);
  void take(Block* block, size_t size);
  void free_block(Block* block) noexcept;
  void merge_into(Block* dst, Block* src) noexcept;
  void retag(Segment* segment, StreamId stream) noexcept;
  void process_pending();
  size_t release_free_segments();
  EventId get_event() noexcept;
  void put_event(EventId event) noexcept;
  void drop_fence(Block* block) noexcept;

  BlockDriver& driver_;
  Pool small_pool_;
  Pool large_pool_;
  std::map<char*, Segment> segments_;            // by base address
  std::unordered_map<const void*, Block*> allocated_;
  std::vector<Block*> pending_;                   // freed from a foreign stream, events in flight
  std::vector<EventId> spare_events_;
  MemoryStats stats_;
};

}  // namespace ffr
