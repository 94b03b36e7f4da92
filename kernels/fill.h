// Fill a buffer with one value, and seeded random fills from Philox: uniform fills are
// bit-identical on CPU and CUDA; normal fills agree to float rounding (device logf/cosf differ
// from libm by an ulp).
#pragma once

#include "engine/dtype.h"

#include <cstdint>

namespace ffr {

void fill_cpu(void* data, int64_t n, DType dtype, double value);
void fill_cuda(void* data, int64_t n, DType dtype, double value);

// Element i is drawn from Philox words starting at `offset` of stream (seed, stream):
// uniform uses word offset+i, normal uses words offset+2i and offset+2i+1.
struct PhiloxPosition {
  uint64_t seed;
  uint64_t stream;
  uint64_t offset;
};
void uniform_cpu(void* data, int64_t n, DType dtype, PhiloxPosition at, double low, double high);
void uniform_cuda(void* data, int64_t n, DType dtype, PhiloxPosition at, double low, double high);
void normal_cpu(void* data, int64_t n, DType dtype, PhiloxPosition at, double mean, double stddev);
void normal_cuda(void* data, int64_t n, DType dtype, PhiloxPosition at, double mean, double stddev);

}  // namespace ffr
