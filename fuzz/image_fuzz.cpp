// libFuzzer target for the image path (see fuzz/README.md for the build line): decode PNG/JPEG
// bytes with our decoder (stb_image behind ffr::data::decode_image), resize to 32 x 32 and
// normalise as the loader does, then encode the small image as PNG and decode it again.
//
// The contract under test: any byte string either decodes, or is refused with ffr::InputError,
// without allocating more than the decoder's limits allow. Anything else (a crash, a sanitizer
// report, libFuzzer's out-of-memory report, another exception type, a broken invariant checked
// below) is a bug. Only InputError is caught, so every other exception aborts the run.
#include "data/image.h"
#include "data/preprocess.h"
#include "engine/error.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace ffr::data;

constexpr int kSize = 32;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  RgbImage image;
  try {
    image = decode_image(bytes, "fuzz input");
  } catch (const ffr::InputError&) {
    return 0;  // refused with a message: the expected outcome for malformed input
  }
  check(image.width > 0 && image.height > 0 && image.width <= kMaxImageSide && image.height <= kMaxImageSide);
  check(image.pixels.size() == size_t(image.width) * image.height * 3);

  // The loader's transform: bilinear resize in 8 bits, then (p / 255 - mean) / std into CHW.
  const RgbImage small = resize_bilinear(image, kSize, kSize);
  check(small.width == kSize && small.height == kSize && small.pixels.size() == size_t(kSize) * kSize * 3);
  const Normalization norm = Normalization::imagenet();
  std::vector<float> chw(size_t(3) * kSize * kSize);
  preprocess_into(small, kSize, norm, chw.data());
  for (int c = 0; c < 3; ++c) {
    const float lo = (0.0f - norm.mean[c]) / norm.std[c] - 1e-4f, hi = (1.0f - norm.mean[c]) / norm.std[c] + 1e-4f;
    for (int i = 0; i < kSize * kSize; ++i) {
      const float v = chw[size_t(c) * kSize * kSize + i];
      check(std::isfinite(v) && v >= lo && v <= hi);
    }
  }

  // PNG is lossless: what we encode decodes to the same pixels.
  const RgbImage back = decode_image(encode_png(small), "re-encoded fuzz input");
  check(back.width == kSize && back.height == kSize && back.pixels == small.pixels);
  return 0;
}
