#include "data/preprocess.h"

#include "engine/error.h"

#include <algorithm>

namespace ffr::data {

PixelAffine pixel_affine(const Normalization& norm) {
  PixelAffine affine;  // (p / 255 - mean) / std = p * scale + shift
  for (int c = 0; c < 3; ++c) {
    affine.scale[c] = 1.0f / (255.0f * norm.std[c]);
    affine.shift[c] = -norm.mean[c] / norm.std[c];
  }
  return affine;
}

namespace {

// Resize in 8 bits first, as torchvision does on a PIL image before ToTensor, so our inputs
// match a PyTorch pipeline pixel for pixel. `storage` holds the resized copy when one is needed.
const RgbImage& resized(const RgbImage& image, int size, RgbImage& storage) {
  FFR_CHECK(size > 0, "preprocess: bad size ", size);
  if (image.width == size && image.height == size) return image;
  storage = resize_bilinear(image, size, size);
  return storage;
}

}  // namespace

void preprocess_into(const RgbImage& image, int size, const Normalization& norm, float* chw) {
  RgbImage storage;
  const RgbImage& src = resized(image, size, storage);
  normalize_images_cpu(src.pixels.data(), chw, 1, int64_t(size) * size, pixel_affine(norm));
}

void resize_into(const RgbImage& image, int size, uint8_t* hwc) {
  RgbImage storage;
  const RgbImage& src = resized(image, size, storage);
  std::copy(src.pixels.begin(), src.pixels.end(), hwc);
}

}  // namespace ffr::data
