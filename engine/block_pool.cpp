#include "engine/block_pool.h"

#include <algorithm>
#include <functional>
#include <limits>

namespace ffr {

bool BlockPool::BlockOrder::operator()(const Block* a, const Block* b) const {
  if (a->segment->stream != b->segment->stream) return std::less<StreamId>()(a->segment->stream, b->segment->stream);
  if (a->size != b->size) return a->size < b->size;
  return std::less<const char*>()(a->ptr, b->ptr);
}

BlockPool::BlockPool(BlockDriver& driver) : driver_(driver) {}

BlockPool::~BlockPool() {
  for (auto& [base, segment] : segments_) {
    for (Block* b = segment.head; b != nullptr;) {
      Block* next = b->next;
      for (EventId e : b->pending) driver_.destroy_event(e);
      if (b->fence != nullptr) driver_.destroy_event(b->fence);
      delete b;
      b = next;
    }
  }
  for (EventId e : spare_events_) driver_.destroy_event(e);
}

size_t BlockPool::round_size(size_t bytes) {
  if (bytes < kMinBlockSize) return kMinBlockSize;
  if (bytes > std::numeric_limits<size_t>::max() - kRoundLarge) return std::numeric_limits<size_t>::max();
  return (bytes + kMinBlockSize - 1) / kMinBlockSize * kMinBlockSize;
}

size_t BlockPool::segment_size(size_t rounded) {
  if (rounded <= kSmallSize) return kSmallBuffer;
  if (rounded < kMinLargeAlloc) return kLargeBuffer;
  if (rounded > std::numeric_limits<size_t>::max() - kRoundLarge) return std::numeric_limits<size_t>::max();
  return (rounded + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
}

void* BlockPool::allocate(size_t bytes, StreamId stream) {
  const size_t size = round_size(bytes);
  if (size == std::numeric_limits<size_t>::max()) return nullptr;  // no device holds this
  process_pending();
  Pool& pool = pool_for(size <= kSmallSize);
  size_t new_reserve = 0;
  Block* block = find_same_stream(pool, stream, size);
  if (block == nullptr) block = find_handoff(pool, stream, size);
  if (block == nullptr) {
    block = new_segment(size, stream);
    if (block == nullptr) return nullptr;
    new_reserve = block->size;
  }
  take(block, size);
  stats_.record_allocation(block->size, new_reserve);
  return block->ptr;
}

BlockPool::Block* BlockPool::find_same_stream(Pool& pool, StreamId stream, size_t size) {
  Segment key_segment;
  key_segment.stream = stream;
  Block key;
  key.size = size;
  key.segment = &key_segment;
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->segment->stream != stream) return nullptr;
  return *it;
}

// A block another stream may take without waiting: a free block of a retired stream's segment,
// else a whole free segment whose fence (recorded on its stream when it became free) has passed.
BlockPool::Block* BlockPool::find_handoff(Pool& pool, StreamId stream, size_t size) {
  Block* block = find_same_stream(pool, kIdleStream, size);
  if (block == nullptr) {
    std::vector<Block*> candidates;
    for (Block* b : pool) {
      if (b->size >= size && b->prev == nullptr && b->next == nullptr && b->fence != nullptr) candidates.push_back(b);
    }
    std::sort(candidates.begin(), candidates.end(), [](const Block* a, const Block* b) { return a->size < b->size; });
    for (Block* b : candidates) {
      if (driver_.event_done(b->fence)) {
        block = b;
        break;
      }
    }
  }
  if (block != nullptr) retag(block->segment, stream);
  return block;
}

BlockPool::Block* BlockPool::new_segment(size_t size, StreamId stream) {
  const size_t bytes = segment_size(size);
  if (bytes == std::numeric_limits<size_t>::max()) return nullptr;
  void* ptr = driver_.malloc(bytes);
  if (ptr == nullptr && release_free_segments() > 0) ptr = driver_.malloc(bytes);  // retry once
  if (ptr == nullptr) return nullptr;
  char* base = static_cast<char*>(ptr);
  Segment& segment = segments_[base];
  segment.base = base;
  segment.size = bytes;
  segment.stream = stream;
  segment.small = size <= kSmallSize;
  Block* block = new Block;
  block->ptr = base;
  block->size = bytes;
  block->segment = &segment;
  segment.head = block;
  return block;
}

// Hands out `block` (a free block or a new segment), splitting off the rest when it is worth
// keeping: any 512 B in the small pool, more than the small pool's largest request in the large.
void BlockPool::take(Block* block, size_t size) {
  Pool& pool = pool_for(block->segment->small);
  if (block->in_pool) {
    pool.erase(block);
    block->in_pool = false;
  }
  drop_fence(block);
  const size_t rest = block->size - size;
  if (block->segment->small ? rest >= kMinBlockSize : rest > kSmallSize) {
    Block* remainder = new Block;
    remainder->ptr = block->ptr + size;
    remainder->size = rest;
    remainder->segment = block->segment;
    remainder->prev = block;
    remainder->next = block->next;
    if (block->next != nullptr) block->next->prev = remainder;
    block->next = remainder;
    block->size = size;
    remainder->in_pool = true;
    pool.insert(remainder);
  }
  block->allocated = true;
  allocated_[block->ptr] = block;
}

bool BlockPool::deallocate(void* ptr, StreamId freeing_stream) noexcept {
  auto it = allocated_.find(ptr);
  if (it == allocated_.end()) return false;
  Block* block = it->second;
  allocated_.erase(it);
  stats_.allocated_bytes -= block->size;
  if (freeing_stream != kIdleStream && freeing_stream != block->segment->stream) {
    // Work queued on the freeing stream may still use the block: its segment's stream can have
    // it back only once that work is done.
    EventId event = get_event();
    if (event != nullptr && driver_.record_event(event, freeing_stream)) {
      block->allocated = false;
      block->pending.push_back(event);
      pending_.push_back(block);
    } else if (event != nullptr) {
      driver_.destroy_event(event);
    }
    // Without an event nothing proves the block idle: it stays out of use (allocated = true).
    return true;
  }
  free_block(block);
  return true;
}

void BlockPool::free_block(Block* block) noexcept {
  block->allocated = false;
  if (block->prev != nullptr && block->prev->in_pool) merge_into(block, block->prev);
  if (block->next != nullptr && block->next->in_pool) merge_into(block, block->next);
  block->in_pool = true;
  pool_for(block->segment->small).insert(block);
  Segment* segment = block->segment;
  if (block->prev == nullptr && block->next == nullptr && segment->stream != kIdleStream) {
    EventId fence = get_event();
    if (fence != nullptr && driver_.record_event(fence, segment->stream)) {
      block->fence = fence;
    } else if (fence != nullptr) {
      driver_.destroy_event(fence);
    }
  }
}

// Absorbs `src`, a free neighbour in the pool, into `dst` (not in the pool).
void BlockPool::merge_into(Block* dst, Block* src) noexcept {
  pool_for(src->segment->small).erase(src);
  drop_fence(src);
  if (src == dst->prev) {
    dst->ptr = src->ptr;
    dst->prev = src->prev;
    if (dst->prev != nullptr) dst->prev->next = dst;
    if (dst->segment->head == src) dst->segment->head = dst;
  } else {
    dst->next = src->next;
    if (dst->next != nullptr) dst->next->prev = dst;
  }
  dst->size += src->size;
  delete src;
}

void BlockPool::retag(Segment* segment, StreamId stream) noexcept {
  if (segment->stream == stream) return;
  Pool& pool = pool_for(segment->small);
  std::vector<Block*> cached;
  for (Block* b = segment->head; b != nullptr; b = b->next) {
    if (!b->in_pool) continue;
    pool.erase(b);
    drop_fence(b);
    cached.push_back(b);
  }
  segment->stream = stream;
  for (Block* b : cached) pool.insert(b);
}

void BlockPool::process_pending() {
  auto done = [&](Block* block) {
    for (EventId e : block->pending) {
      if (!driver_.event_done(e)) return false;
    }
    return true;
  };
  auto ready = std::stable_partition(pending_.begin(), pending_.end(), [&](Block* b) { return !done(b); });
  std::vector<Block*> finished(ready, pending_.end());
  pending_.erase(ready, pending_.end());
  for (Block* block : finished) {
    for (EventId e : block->pending) put_event(e);
    block->pending.clear();
    free_block(block);
  }
}

size_t BlockPool::release_cached() {
  process_pending();
  return release_free_segments();
}

// Frees the segments no tensor uses. The device is synchronized first (kernels queued before a
// block was freed may still touch it), but only when some segment can be released: near
// capacity a step that fails to allocate must not pay a device-wide sync for nothing.
size_t BlockPool::release_free_segments() {
  bool any_unused = false;
  for (auto& [base, segment] : segments_) {
    bool unused = true;
    for (Block* b = segment.head; b != nullptr && unused; b = b->next) unused = !b->allocated;
    if (unused) {
      any_unused = true;
      break;
    }
  }
  if (!any_unused) return 0;
  driver_.synchronize();
  process_pending();  // after the synchronization every pending event has completed
  size_t released = 0;
  for (auto it = segments_.begin(); it != segments_.end();) {
    Block* head = it->second.head;
    if (!head->in_pool || head->next != nullptr) {
      ++it;
      continue;
    }
    pool_for(it->second.small).erase(head);
    drop_fence(head);
    driver_.free(head->ptr);
    stats_.reserved_bytes -= head->size;
    released += head->size;
    delete head;
    it = segments_.erase(it);
  }
  return released;
}

void BlockPool::retire_stream(StreamId stream) noexcept {
  if (stream == kIdleStream) return;
  for (auto& [base, segment] : segments_) {
    if (segment.stream == stream) retag(&segment, kIdleStream);
  }
}

size_t BlockPool::block_size(const void* ptr) const {
  auto it = allocated_.find(ptr);
  return it == allocated_.end() ? 0 : it->second->size;
}

EventId BlockPool::get_event() noexcept {
  if (!spare_events_.empty()) {
    EventId e = spare_events_.back();
    spare_events_.pop_back();
    return e;
  }
  return driver_.create_event();
}

void BlockPool::put_event(EventId event) noexcept {
  try {
    spare_events_.push_back(event);
  } catch (...) {
    driver_.destroy_event(event);
  }
}

void BlockPool::drop_fence(Block* block) noexcept {
  if (block->fence == nullptr) return;
  put_event(block->fence);
  block->fence = nullptr;
}

}  // namespace ffr
