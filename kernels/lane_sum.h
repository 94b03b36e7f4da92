// Sums for the CPU kernels that are fast and still give the same bits everywhere.
//
// A loop `s += term(i)` is a chain of dependent adds: one term per add latency (4 cycles), and
// the compiler may not reorder it (floating addition is not associative). add_lanes keeps
// kLanes independent partial sums, lane j taking the terms i = j (mod kLanes), and total()
// combines them in a fixed tree: the loop vectorises and pipelines (5-8x faster here), and the
// order depends on n alone, never on threads or machine.
#pragma once

#include <cstdint>

namespace ffr {

constexpr int64_t kLanes = 8;

struct LaneSums {
  double lane[kLanes] = {};
  double total() const {
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  }
};

// acc.lane[i % kLanes] += term(i) for i in [0, n), continuing the lanes where an earlier call left
// them (a sum over several rows: call once per row, then total()).
template <typename Term>
inline void add_lanes(LaneSums& acc, int64_t n, const Term& term) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc.lane[j] += term(i + j);
  for (int64_t j = 0; i < n; ++i, ++j) acc.lane[j] += term(i);
}

template <typename Term>
inline double lane_sum(int64_t n, const Term& term) {
  LaneSums acc;
  add_lanes(acc, n, term);
  return acc.total();
}

// sum_i a[i] b[i] in double.
template <typename T>
inline double lane_dot(const T* a, const T* b, int64_t n) {
  return lane_sum(n, [a, b](int64_t i) { return double(a[i]) * double(b[i]); });
}

}  // namespace ffr
