// Host-side bfloat16: the upper 16 bits of an IEEE float32, rounded to nearest even. Same bit
// layout as CUDA's __nv_bfloat16, so buffers move between host and device as they are.
#pragma once

#include <cstdint>
#include <cstring>

namespace ffr {

struct bfloat16 {
  uint16_t bits = 0;
};

inline bfloat16 float_to_bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  bfloat16 out;
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0) {
    out.bits = uint16_t((u >> 16) | 0x0040u);  // keep NaN a (quiet) NaN
    return out;
  }
  const uint32_t rounding_bias = 0x7FFFu + ((u >> 16) & 1u);
  out.bits = uint16_t((u + rounding_bias) >> 16);
  return out;
}

inline float bfloat16_to_float(bfloat16 b) {
  const uint32_t u = uint32_t(b.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace ffr
