// The caching host allocator (engine/cpu_allocator.h): reuse, stats, the limit, release, and no
// growth over repeated training-like steps.
#include "engine/cpu_allocator.h"

#include "engine/error.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace ffr {
namespace {

TEST(CpuAllocator, SizeClassesRoundUpByAtMostAnEighth) {
  EXPECT_EQ(CpuAllocator::size_class(1), 64u);
  EXPECT_EQ(CpuAllocator::size_class(64), 64u);
  EXPECT_EQ(CpuAllocator::size_class(4096), 4096u);
  for (size_t bytes = 1; bytes < (size_t(1) << 30); bytes = bytes * 3 / 2 + 7) {
    const size_t c = CpuAllocator::size_class(bytes);
    EXPECT_GE(c, bytes);
    EXPECT_EQ(c % 64, 0u);
    if (bytes > 4096) EXPECT_LE(double(c), double(bytes) * 1.125 + 2.0 * 1024 * 1024) << bytes;
    EXPECT_EQ(CpuAllocator::size_class(c), c) << "a class is its own class";
  }
}

TEST(CpuAllocator, FreedBlocksAreReusedAndAligned) {
  CpuAllocator a;
  void* p = a.allocate(100000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  a.deallocate(p, 100000);
  EXPECT_EQ(a.stats().allocated_bytes, 0u);
  EXPECT_EQ(a.cached_bytes(), CpuAllocator::size_class(100000));
  void* q = a.allocate(99000);  // same class
  EXPECT_EQ(q, p);
  EXPECT_EQ(a.stats().os_allocations, 1u);
  EXPECT_EQ(a.stats().allocations, 2u);
  a.deallocate(q, 99000);
  void* big = a.allocate(size_t(8) << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big) % (size_t(2) << 20), 0u) << "big blocks start on a huge page";
  a.deallocate(big, size_t(8) << 20);
}

TEST(CpuAllocator, StatsCountRequestedAndReservedBytes) {
  CpuAllocator a;
  void* p = a.allocate(5000);
  void* q = a.allocate(70);
  MemoryStats s = a.stats();
  EXPECT_EQ(s.allocated_bytes, 5070u);
  EXPECT_EQ(s.peak_allocated_bytes, 5070u);
  EXPECT_EQ(s.reserved_bytes, CpuAllocator::size_class(5000) + CpuAllocator::size_class(70));
  a.deallocate(p, 5000);
  a.deallocate(q, 70);
  s = a.stats();
  EXPECT_EQ(s.allocated_bytes, 0u);
  EXPECT_EQ(s.peak_allocated_bytes, 5070u);
  EXPECT_EQ(s.reserved_bytes, CpuAllocator::size_class(5000) + CpuAllocator::size_class(70)) << "cached";
  a.reset_peak();
  EXPECT_EQ(a.stats().peak_allocated_bytes, 0u);
  a.release_cached();
  EXPECT_EQ(a.stats().reserved_bytes, 0u);
  EXPECT_EQ(a.cached_bytes(), 0u);
  EXPECT_EQ(a.allocate(0), nullptr);
  a.deallocate(nullptr, 0);
}

TEST(CpuAllocator, LimitThrowsOutOfMemoryWithTheFreeBytes) {
  CpuAllocator a;
  a.set_limit(10000);
  void* p = a.allocate(8000);
  try {
    a.allocate(4000);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_EQ(e.requested_bytes, 4000u);
    EXPECT_EQ(e.free_bytes, 2000u);
  }
  a.deallocate(p, 8000);
  void* q = a.allocate(4000);  // fits now (the cached 8000-byte block is another class)
  a.deallocate(q, 4000);
  a.set_limit(0);
  EXPECT_THROW(a.allocate(SIZE_MAX / 2), OutOfMemoryError);
}

TEST(CpuAllocator, RepeatedStepsTakeNothingNewFromTheOs) {
  CpuAllocator a;
  // A "step": activations of assorted sizes allocated in order, then freed in reverse, with a
  // few temporaries freed early.
  const std::vector<size_t> sizes = {size_t(3) << 20, 123456, 64, 777, size_t(12) << 20, 4096, 100000, 5 << 20};
  auto step = [&] {
    std::vector<void*> live;
    for (size_t s : sizes) {
      void* tmp = a.allocate(s / 2 + 1);
      live.push_back(a.allocate(s));
      a.deallocate(tmp, s / 2 + 1);
    }
    for (size_t i = sizes.size(); i-- > 0;) a.deallocate(live[i], sizes[i]);
  };
  step();
  const MemoryStats first = a.stats();
  for (int i = 0; i < 10; ++i) step();
  const MemoryStats later = a.stats();
  EXPECT_EQ(later.os_allocations, first.os_allocations) << "steady steps reuse cached blocks";
  EXPECT_EQ(later.reserved_bytes, first.reserved_bytes);
  EXPECT_EQ(later.peak_reserved_bytes, first.peak_reserved_bytes);
  EXPECT_EQ(later.allocated_bytes, 0u);
}

TEST(CpuAllocator, TheCacheIsBoundedByTheHighWaterMark) {
  CpuAllocator a;
  // 40 blocks of distinct classes, one at a time: never more than one in use, so the cache
  // (bounded by max(high-water mark, 64 MiB)) cannot keep them all.
  size_t bytes = size_t(1) << 20;
  for (int i = 0; i < 40; ++i, bytes = bytes * 9 / 8 + 4096) {
    void* p = a.allocate(bytes);
    a.deallocate(p, bytes);
  }
  EXPECT_LE(a.cached_bytes(), std::max<size_t>(a.stats().peak_allocated_bytes, size_t(64) << 20));
  EXPECT_EQ(a.stats().reserved_bytes, a.cached_bytes());
}

}  // namespace
}  // namespace ffr
