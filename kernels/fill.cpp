#include "kernels/fill.h"

#include "engine/bfloat16.h"
#include "engine/error.h"
#include "engine/rng.h"

#include <algorithm>

namespace ffr {

namespace {
template <typename F>
void for_each_element(void* data, int64_t n, DType dtype, F&& value_of) {
  switch (dtype) {
    case DType::Float32: { auto* p = static_cast<float*>(data); for (int64_t i = 0; i < n; ++i) p[i] = float(value_of(i)); break; }
    case DType::Float64: { auto* p = static_cast<double*>(data); for (int64_t i = 0; i < n; ++i) p[i] = value_of(i); break; }
    case DType::BFloat16: { auto* p = static_cast<bfloat16*>(data); for (int64_t i = 0; i < n; ++i) p[i] = float_to_bfloat16(float(value_of(i))); break; }
    case DType::Int32: { auto* p = static_cast<int32_t*>(data); for (int64_t i = 0; i < n; ++i) p[i] = int32_t(value_of(i)); break; }
    case DType::Int64: { auto* p = static_cast<int64_t*>(data); for (int64_t i = 0; i < n; ++i) p[i] = int64_t(value_of(i)); break; }
  }
}
}  // namespace

void fill_cpu(void* data, int64_t n, DType dtype, double value) {
  for_each_element(data, n, dtype, [value](int64_t) { return value; });
}

// Random values are computed in float32 (as on the GPU) and then stored, so CPU and CUDA agree
// bit for bit for float32 and bfloat16.
void uniform_cpu(void* data, int64_t n, DType dtype, PhiloxPosition at, double low, double high) {
  FFR_CHECK(is_floating(dtype), "uniform fill needs a floating dtype, got ", dtype_name(dtype));
  const float lo = float(low), span = float(high - low);
  for_each_element(data, n, dtype, [&](int64_t i) {
    return double(lo + span * word_to_unit_float(philox_word(at.seed, at.stream, at.offset + uint64_t(i))));
  });
}

void normal_cpu(void* data, int64_t n, DType dtype, PhiloxPosition at, double mean, double stddev) {
  FFR_CHECK(is_floating(dtype), "normal fill needs a floating dtype, got ", dtype_name(dtype));
  const float m = float(mean), s = float(stddev);
  for_each_element(data, n, dtype, [&](int64_t i) {
    const uint64_t w = at.offset + 2 * uint64_t(i);
    return double(m + s * words_to_normal(philox_word(at.seed, at.stream, w),
                                          philox_word(at.seed, at.stream, w + 1)));
  });
}

}  // namespace ffr
