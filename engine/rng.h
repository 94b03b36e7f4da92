// Seeded, platform-independent random numbers.
//
// Philox-4x32-10 (Salmon et al. 2011): a counter-based generator, so the value at position i of a
// stream is a pure function of (seed, stream, i). CPU and CUDA fills use the same function and give
// bit-identical tensors, and a run resumed from (seed, offset) continues exactly where it stopped.
// std::*_distribution is avoided on purpose: its output differs between standard libraries.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/host_device.h"

namespace ffr {

struct PhiloxState {
  uint32_t counter[4];
  uint32_t key[2];
};

// One Philox-4x32-10 block: 4 random 32-bit words for counter `c` under key `k`.
FFR_HOST_DEVICE void philox4x32(const uint32_t c[4], const uint32_t k[2], uint32_t out[4]) {
  uint32_t x0 = c[0], x1 = c[1], x2 = c[2], x3 = c[3];
  uint32_t k0 = k[0], k1 = k[1];
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * x0;
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * x2;
    const uint32_t y0 = uint32_t(p1 >> 32) ^ x1 ^ k0;
    const uint32_t y2 = uint32_t(p0 >> 32) ^ x3 ^ k1;
    x0 = y0; x1 = uint32_t(p1); x2 = y2; x3 = uint32_t(p0);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

// The i-th 32-bit word of stream (seed, stream): word i lives in block i/4, lane i%4.
FFR_HOST_DEVICE uint32_t philox_word(uint64_t seed, uint64_t stream, uint64_t i) {
  const uint64_t block = i >> 2;
  const uint32_t c[4] = {uint32_t(block), uint32_t(block >> 32), uint32_t(stream), uint32_t(stream >> 32)};
  const uint32_t k[2] = {uint32_t(seed), uint32_t(seed >> 32)};
  uint32_t out[4];
  philox4x32(c, k, out);
  return out[i & 3];
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float32).
FFR_HOST_DEVICE float word_to_unit_float(uint32_t w) { return float(w >> 8) * (1.0f / 16777216.0f); }

// A standard normal from two words (Box-Muller); u1 is kept away from 0 so log() is finite.
FFR_HOST_DEVICE float words_to_normal(uint32_t w1, uint32_t w2) {
  const float u1 = (float(w1 >> 8) + 0.5f) * (1.0f / 16777216.0f);
  const float u2 = word_to_unit_float(w2);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
}

// Host-side sequential generator over one Philox stream. Cheap to copy; its whole state is
// (seed, stream, offset), which is what a checkpoint saves.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  uint32_t next_u32() { return philox_word(seed_, stream_, offset_++); }
  uint64_t next_u64() {
    const uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), without modulo bias (rejection).
  uint64_t below(uint64_t n) {
    if (n <= 1) return 0;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do { x = next_u64(); } while (x >= limit);
    return x % n;
  }
  double normal() {
    const double u1 = (double(next_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Fisher-Yates, the same permutation on every platform.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
  // Reserves `count` words for a bulk fill (e.g. a CUDA kernel) and returns their first offset.
  uint64_t reserve(uint64_t count) {
    const uint64_t first = (offset_ + 3) & ~uint64_t(3);  // start on a block boundary
    offset_ = first + count;
    return first;
  }

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t offset_ = 0;
};

}  // namespace ffr
