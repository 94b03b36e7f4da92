#include "kernels/fill.h"

#include "engine/bfloat16.h"
#include "engine/error.h"
#include "engine/rng.h"

#include <algorithm>
#include <vector>

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
// The words of positions [first, first + count) of a Philox stream, a whole block (4 words) per
// counter instead of one counter per word.
static std::vector<uint32_t> philox_words(const PhiloxPosition& at, uint64_t count) {
  std::vector<uint32_t> words(size_t(count) + 8);
  const uint64_t first_block = at.offset >> 2, skip = at.offset & 3;
  const uint64_t blocks = (skip + count + 3) / 4;
  const uint32_t key[2] = {uint32_t(at.seed), uint32_t(at.seed >> 32)};
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint64_t block = first_block + b;
    const uint32_t counter[4] = {uint32_t(block), uint32_t(block >> 32), uint32_t(at.stream), uint32_t(at.stream >> 32)};
    uint32_t out[4];
    philox4x32(counter, key, out);
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t index = int64_t(b * 4 + uint64_t(lane)) - int64_t(skip);
      if (index >= 0 && uint64_t(index) < count) words[size_t(index)] = out[lane];
    }
  }
  words.resize(size_t(count));
  return words;
}

// Random values are computed in float32 (as on the GPU) and then stored, so CPU and CUDA agree
// bit for bit for float32 and bfloat16 uniform fills.
void uniform_cpu(void* data, int64_t n, DType dtype, PhiloxPosition at, double low, double high) {
  FFR_CHECK(is_floating(dtype), "uniform fill needs a floating dtype, got ", dtype_name(dtype));
  const float lo = float(low), span = float(high - low);
  const std::vector<uint32_t> words = philox_words(at, uint64_t(n));
  for_each_element(data, n, dtype, [&](int64_t i) { return double(lo + span * word_to_unit_float(words[size_t(i)])); });
}

void normal_cpu(void* data, int64_t n, DType dtype, PhiloxPosition at, double mean, double stddev) {
  FFR_CHECK(is_floating(dtype), "normal fill needs a floating dtype, got ", dtype_name(dtype));
  const float m = float(mean), s = float(stddev);
  const std::vector<uint32_t> words = philox_words(at, 2 * uint64_t(n));
  for_each_element(data, n, dtype, [&](int64_t i) {
    return double(m + s * words_to_normal(words[2 * size_t(i)], words[2 * size_t(i) + 1]));
  });
}

}  // namespace ffr
