// The caching allocator's bookkeeping (engine/block_pool.h) on a fake device: size classes,
// splitting and merging, reserved vs allocated bytes, stream-tagged reuse gated by events, and
// the out-of-memory path. These run on the CPU; the CUDA tests at the end skip without a GPU.
#include "engine/allocator.h"
#include "engine/block_pool.h"
#include "engine/device.h"
#include "engine/tensor.h"
#include "kernels/elementwise.h"
#include "tests/testing.h"

#include <cstdint>
#include <map>
#include <thread>

namespace ffr {
namespace {

constexpr size_t MiB = size_t(1) << 20;

// A device with `capacity` bytes. Addresses are never reused, so a test can tell blocks apart.
// An event completes when the test says its stream has caught up, or at synchronize().
class FakeDriver : public BlockDriver {
 public:
  explicit FakeDriver(size_t capacity = size_t(1) << 40) : capacity(capacity) {}

  void* malloc(size_t bytes) override {
    ++malloc_calls;
    if (used + bytes > capacity) {
      ++failed_mallocs;
      return nullptr;
    }
    used += bytes;
    const uintptr_t address = next_address;
    next_address += bytes + 4096;
    sizes[address] = bytes;
    return reinterpret_cast<void*>(address);
  }
  void free(void* ptr) override {
    auto it = sizes.find(reinterpret_cast<uintptr_t>(ptr));
    ASSERT_NE(it, sizes.end()) << "freed memory the driver never gave";
    used -= it->second;
    sizes.erase(it);
    ++frees;
  }
  EventId create_event() noexcept override {
    const uintptr_t id = next_event++;
    events[id] = {nullptr, true};
    return reinterpret_cast<EventId>(id);
  }
  void destroy_event(EventId event) noexcept override { events.erase(reinterpret_cast<uintptr_t>(event)); }
  bool record_event(EventId event, StreamId stream) noexcept override {
    events[reinterpret_cast<uintptr_t>(event)] = {stream, false};
    ++records;
    return true;
  }
  bool event_done(EventId event) override {
    ++queries;
    return events.at(reinterpret_cast<uintptr_t>(event)).done;
  }
  void synchronize() override {
    ++syncs;
    for (auto& [id, e] : events) e.done = true;
  }
  // Everything queued on `stream` so far has run.
  void complete(StreamId stream) {
    for (auto& [id, e] : events) {
      if (e.stream == stream) e.done = true;
    }
  }

  struct Event {
    StreamId stream;
    bool done;
  };
  size_t capacity;
  size_t used = 0;
  uintptr_t next_address = 0x100000000;
  uintptr_t next_event = 1;
  std::map<uintptr_t, size_t> sizes;
  std::map<uintptr_t, Event> events;
  int malloc_calls = 0, failed_mallocs = 0, frees = 0, syncs = 0, records = 0, queries = 0;
};

int stream_a_tag, stream_b_tag;
const StreamId A = &stream_a_tag;
const StreamId B = &stream_b_tag;

char* as_bytes(void* p) { return static_cast<char*>(p); }

TEST(BlockPool, SizeClasses) {
  EXPECT_EQ(BlockPool::round_size(0), 512u);
  EXPECT_EQ(BlockPool::round_size(1), 512u);
  EXPECT_EQ(BlockPool::round_size(513), 1024u);
  EXPECT_EQ(BlockPool::round_size(3 * MiB + 1), 3 * MiB + 512);
  EXPECT_EQ(BlockPool::segment_size(512), 2 * MiB) << "small requests share 2 MiB segments";
  EXPECT_EQ(BlockPool::segment_size(MiB), 2 * MiB);
  EXPECT_EQ(BlockPool::segment_size(MiB + 512), 20 * MiB) << "mid-size requests share 20 MiB segments";
  EXPECT_EQ(BlockPool::segment_size(10 * MiB), 10 * MiB) << "large requests get their own segment";
  EXPECT_EQ(BlockPool::segment_size(11 * MiB), 12 * MiB);
}

TEST(BlockPool, SmallRequestsAreCarvedFromOneSegment) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* a = pool.allocate(1000, A);
  void* b = pool.allocate(1000, A);
  void* c = pool.allocate(100, A);
  EXPECT_EQ(driver.malloc_calls, 1);
  EXPECT_EQ(as_bytes(b), as_bytes(a) + 1024);
  EXPECT_EQ(as_bytes(c), as_bytes(b) + 1024);
  EXPECT_EQ(pool.block_size(c), 512u);
  EXPECT_EQ(pool.stats().allocated_bytes, 2560u);
  EXPECT_EQ(pool.stats().reserved_bytes, 2 * MiB);
  EXPECT_EQ(pool.stats().os_allocations, 1u);
  EXPECT_EQ(pool.stats().allocations, 3u);
}

TEST(BlockPool, LargeBlocksSplitAndFreedNeighboursMerge) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* a = pool.allocate(6 * MiB, A);
  void* b = pool.allocate(6 * MiB, A);
  void* c = pool.allocate(6 * MiB, A);
  EXPECT_EQ(driver.malloc_calls, 1) << "three 6 MiB blocks from one 20 MiB segment";
  EXPECT_EQ(pool.stats().reserved_bytes, 20 * MiB);
  EXPECT_EQ(pool.stats().allocated_bytes, 18 * MiB);
  ASSERT_TRUE(pool.deallocate(b, A));
  ASSERT_TRUE(pool.deallocate(a, A));
  ASSERT_TRUE(pool.deallocate(c, A));
  EXPECT_EQ(pool.stats().allocated_bytes, 0u);
  // Only the merged segment (20 MiB) holds 16 MiB; the fragments (6, 6, 6, 2) would not.
  void* d = pool.allocate(16 * MiB, A);
  EXPECT_EQ(d, a);
  EXPECT_EQ(driver.malloc_calls, 1);
  EXPECT_EQ(pool.block_size(d), 16 * MiB) << "the 4 MiB rest is split off";
  void* e = pool.allocate(4 * MiB, A);
  EXPECT_EQ(as_bytes(e), as_bytes(d) + 16 * MiB);
  EXPECT_EQ(driver.malloc_calls, 1);
  EXPECT_EQ(pool.stats().reserved_bytes, pool.stats().allocated_bytes);
}

TEST(BlockPool, SmallRestOfALargeBlockIsNotSplitOff) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* big = pool.allocate(12 * MiB, A);  // its own 12 MiB segment
  pool.deallocate(big, A);
  void* p = pool.allocate(11 * MiB + 512, A);  // rest: 512 KiB, below what the large pool keeps
  EXPECT_EQ(p, big);
  EXPECT_EQ(pool.block_size(p), 12 * MiB);
  EXPECT_EQ(pool.stats().allocated_bytes, 12 * MiB) << "allocated counts the whole block handed out";
}

TEST(BlockPool, ReservedCoversAllocatedAndReleaseFreesOnlyUnusedSegments) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* small = pool.allocate(4096, A);
  void* mid = pool.allocate(3 * MiB, A);
  void* big = pool.allocate(30 * MiB, A);
  EXPECT_EQ(pool.stats().reserved_bytes, 2 * MiB + 20 * MiB + 30 * MiB);
  EXPECT_EQ(pool.stats().peak_reserved_bytes, pool.stats().reserved_bytes);
  EXPECT_EQ(pool.stats().allocated_bytes, 4096 + 3 * MiB + 30 * MiB);
  pool.deallocate(big, A);
  pool.deallocate(small, A);
  EXPECT_EQ(pool.stats().allocated_bytes, 3 * MiB);
  EXPECT_EQ(pool.stats().peak_allocated_bytes, 4096 + 3 * MiB + 30 * MiB);
  EXPECT_EQ(pool.release_cached(), 32 * MiB) << "the 30 MiB and 2 MiB segments; the 20 MiB one is in use";
  EXPECT_EQ(driver.frees, 2);
  EXPECT_EQ(driver.syncs, 1);
  EXPECT_EQ(pool.stats().reserved_bytes, 20 * MiB);
  EXPECT_EQ(driver.used, 20 * MiB);
  EXPECT_EQ(pool.release_cached(), 0u);
  EXPECT_EQ(driver.syncs, 1) << "nothing to release: no device synchronization";
  pool.deallocate(mid, A);
  EXPECT_EQ(pool.release_cached(), 20 * MiB);
  EXPECT_EQ(pool.stats().reserved_bytes, 0u);
  EXPECT_EQ(driver.used, 0u);
}

TEST(BlockPool, SameStreamReuseIsImmediate) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* a = pool.allocate(3 * MiB, A);
  pool.deallocate(a, A);
  // No event of stream A has completed, and none needs to: A's next kernels queue behind.
  EXPECT_EQ(pool.allocate(3 * MiB, A), a);
  EXPECT_EQ(driver.malloc_calls, 1);
  EXPECT_EQ(driver.queries, 0) << "the common path asks the device nothing";
}

TEST(BlockPool, FreeSegmentGoesToAnotherStreamOnlyAfterItsEvent) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* x = pool.allocate(12 * MiB, A);
  pool.deallocate(x, A);  // A's kernels may still read x
  void* y = pool.allocate(12 * MiB, B);
  EXPECT_NE(y, x) << "stream B got a block stream A may still be using";
  EXPECT_EQ(driver.malloc_calls, 2);
  driver.complete(A);
  void* z = pool.allocate(12 * MiB, B);
  EXPECT_EQ(z, x) << "after A's event the cached segment serves B";
  EXPECT_EQ(driver.malloc_calls, 2);
  EXPECT_EQ(driver.syncs, 0) << "the host never waited";
  // z now belongs to B: freed and reused on B at once, even though nothing completes.
  pool.deallocate(z, B);
  EXPECT_EQ(pool.allocate(12 * MiB, B), x);
}

TEST(BlockPool, PartlyUsedSegmentStaysWithItsStream) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* a = pool.allocate(1000, A);
  void* a2 = pool.allocate(1000, A);
  pool.deallocate(a2, A);
  driver.complete(A);
  void* b = pool.allocate(1000, B);
  EXPECT_NE(b, a2);
  EXPECT_NE(as_bytes(b), as_bytes(a) + 1024) << "B must not take blocks from A's segment";
  EXPECT_EQ(driver.malloc_calls, 2);
}

TEST(BlockPool, BlockFreedFromAnotherStreamWaitsForThatStream) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* x = pool.allocate(3 * MiB, A);  // made by thread A
  pool.deallocate(x, B);                // dropped by thread B, whose kernels read it
  EXPECT_EQ(pool.pending_frees(), 1u);
  EXPECT_EQ(pool.stats().allocated_bytes, 0u);
  void* y = pool.allocate(3 * MiB, A);
  EXPECT_NE(y, x) << "A reused a block B's queued kernels may still read";
  driver.complete(B);
  pool.deallocate(y, A);
  void* z = pool.allocate(3 * MiB, A);
  EXPECT_EQ(pool.pending_frees(), 0u);
  EXPECT_EQ(z, x) << "once B's event has completed, x is back in A's pool (merged with y)";
  EXPECT_EQ(pool.block_size(z), 3 * MiB);
  EXPECT_EQ(driver.malloc_calls, 1);
}

TEST(BlockPool, RetiredStreamsBlocksGoToAnyStreamAtOnce) {
  FakeDriver driver;
  BlockPool pool(driver);
  void* kept = pool.allocate(1000, A);
  void* x = pool.allocate(1000, A);
  pool.deallocate(x, A);
  pool.retire_stream(A);  // thread A ended; its stream was synchronized
  void* y = pool.allocate(1000, B);
  EXPECT_EQ(y, x);
  EXPECT_EQ(driver.malloc_calls, 1);
  // The segment now belongs to B, kept (A's, still live) included: dropped from B it is cached at
  // once; dropped from a third stream it waits for that stream.
  void* kept2 = pool.allocate(1000, B);
  pool.deallocate(kept, B);
  EXPECT_EQ(pool.pending_frees(), 0u);
  int stream_c_tag = 0;
  pool.deallocate(kept2, &stream_c_tag);
  EXPECT_EQ(pool.pending_frees(), 1u);
}

TEST(BlockPool, OutOfMemoryReleasesOnlyFreeSegmentsAndRetriesOnce) {
  FakeDriver driver(40 * MiB);
  BlockPool pool(driver);
  void* a = pool.allocate(12 * MiB, A);
  void* b = pool.allocate(12 * MiB, A);
  void* c = pool.allocate(12 * MiB, A);
  pool.deallocate(b, A);
  void* d = pool.allocate(14 * MiB, A);  // 36 + 14 > 40: fails, b's segment released, retried
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(driver.failed_mallocs, 1);
  EXPECT_EQ(driver.frees, 1) << "only the free segment is released";
  EXPECT_EQ(driver.syncs, 1);
  EXPECT_EQ(pool.block_size(a), 12 * MiB);
  EXPECT_EQ(pool.block_size(c), 12 * MiB);
  EXPECT_EQ(pool.stats().reserved_bytes, 38 * MiB);
  // Near capacity with nothing cached: each failing request tries the device once, and never
  // synchronizes it, step after step.
  for (int step = 0; step < 5; ++step) EXPECT_EQ(pool.allocate(12 * MiB, A), nullptr);
  EXPECT_EQ(driver.syncs, 1);
  EXPECT_EQ(driver.malloc_calls, 4 + 1 + 5);
  EXPECT_EQ(pool.stats().allocated_bytes, 38 * MiB);
}

TEST(BlockPool, OutOfMemoryWaitsForBlocksFreedFromAnotherStream) {
  FakeDriver driver(28 * MiB);
  BlockPool pool(driver);
  void* a = pool.allocate(12 * MiB, A);
  pool.allocate(12 * MiB, A);
  pool.deallocate(a, B);  // pending on B's event
  EXPECT_NE(pool.allocate(16 * MiB, A), nullptr) << "the sync completes B's event; a's segment is released";
  EXPECT_EQ(driver.syncs, 1);
  EXPECT_EQ(driver.frees, 1);
}

TEST(BlockPool, UnknownPointerIsRefused) {
  FakeDriver driver;
  BlockPool pool(driver);
  int not_ours = 0;
  EXPECT_FALSE(pool.deallocate(&not_ours, A));
  void* p = pool.allocate(100, A);
  EXPECT_TRUE(pool.deallocate(p, A));
  EXPECT_FALSE(pool.deallocate(p, A)) << "a double free is refused";
}

TEST(BlockPool, SteadyStateAsksTheDeviceForNothing) {
  FakeDriver driver;
  BlockPool pool(driver);
  const size_t sizes[] = {4096, 3 * MiB, 40 * MiB, 700 * 1024, 12 * MiB};
  for (int step = 0; step < 20; ++step) {
    std::vector<void*> held;
    for (size_t s : sizes) held.push_back(pool.allocate(s, A));
    for (void* p : held) pool.deallocate(p, A);
  }
  EXPECT_EQ(pool.stats().os_allocations, uint64_t(driver.malloc_calls));
  EXPECT_EQ(driver.malloc_calls, 3) << "a 2 MiB, a 20 MiB (3 + 12 MiB) and a 40 MiB segment";
  EXPECT_EQ(pool.stats().allocated_bytes, 0u);
}

// ---- the real allocators (skip without a GPU) ----

// cudaEventQuery's "not ready" once stayed the thread's last error and the next launch check
// threw it. Pinned blocks whose copies are in flight are asked exactly that.
TEST(CudaAllocator, PinnedReuseLeavesNoErrorForTheNextLaunch) {
  FFR_REQUIRE_CUDA();
  Tensor device = Tensor::empty({1 << 22}, DType::Float32, Device::cuda(0));
  for (int i = 0; i < 20; ++i) {
    Tensor host = Tensor::empty_pinned({1 << 22}, DType::Float32);
    copy_async(device, host);  // 16 MiB in flight while the next pinned allocation looks at this block
  }
  EXPECT_NO_THROW(device.fill_(1.0));
  synchronize();
  EXPECT_EQ(device.cpu().to_vector<float>()[123], 1.0f);
  EXPECT_NO_THROW(pinned_allocator().release_cached());
  const MemoryStats pinned = pinned_allocator().stats();
  EXPECT_EQ(pinned.reserved_bytes, pinned.allocated_bytes) << "the copies are done: nothing stays cached";
}

TEST(CudaAllocator, ThreadsWithTheirOwnStreamsComputeCorrectly) {
  FFR_REQUIRE_CUDA();
  // Each thread frees and reallocates blocks of the same sizes on its own stream; with one
  // shared pool and no stream tags these blocks would pass between threads under live kernels.
  constexpr int64_t n = int64_t(3) << 20;  // 12 MiB: a segment of its own
  auto work = [](float value, std::vector<float>* out) {
    Tensor acc = Tensor::zeros({n}, DType::Float32, Device::cuda(0));
    for (int i = 0; i < 50; ++i) {
      Tensor t = Tensor::full({n}, value, DType::Float32, Device::cuda(0));
      acc = acc + t;
    }
    *out = acc.cpu().to_vector<float>();
  };
  cuda_allocator(0).release_cached();  // below, only the ended threads' segments can serve
  std::vector<float> r1, r2;
  std::thread t1(work, 1.0f, &r1), t2(work, 2.0f, &r2);
  t1.join();
  t2.join();
  ASSERT_EQ(r1.size(), size_t(n));
  for (size_t i = 0; i < r1.size(); i += 997) {
    ASSERT_EQ(r1[i], 50.0f);
    ASSERT_EQ(r2[i], 100.0f);
  }
  // The ended threads' streams were retired: their cached blocks serve this thread at once.
  const uint64_t before = cuda_allocator(0).stats().os_allocations;
  Tensor again = Tensor::empty({n}, DType::Float32, Device::cuda(0));
  EXPECT_EQ(cuda_allocator(0).stats().os_allocations, before);
}

TEST(CudaAllocator, SecondDeviceFromOneThread) {
  FFR_REQUIRE_CUDA();
  if (cuda_device_count() < 2) GTEST_SKIP() << "needs two GPUs";
  DeviceGuard guard(Device::cuda(1));
  Tensor x = Tensor::full({1000}, 3.0, DType::Float32, Device::cuda(1));
  // Allocating on cuda:0 meanwhile must leave cuda:1 current for the ops that follow.
  Tensor on_zero = Tensor::full({1000}, 1.0, DType::Float32, Device::cuda(0));
  Tensor y = x + x;
  EXPECT_EQ(y.device(), Device::cuda(1));
  EXPECT_EQ(y.cpu().to_vector<float>()[999], 6.0f);
  EXPECT_EQ(on_zero.cpu().to_vector<float>()[0], 1.0f);
}

}  // namespace
}  // namespace ffr
