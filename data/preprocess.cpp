#include "data/preprocess.h"

#include "engine/error.h"

namespace ffr::data {

void preprocess_into(const RgbImage& image, int size, const Normalization& norm, float* chw) {
  FFR_CHECK(size > 0, "preprocess_into: bad size ", size);
  // Resize in 8 bits first, as torchvision does on a PIL image before ToTensor, so our inputs
  // match a PyTorch pipeline pixel for pixel.
  const RgbImage resized_storage =
      (image.width == size && image.height == size) ? RgbImage() : resize_bilinear(image, size, size);
  const RgbImage& src = resized_storage.pixels.empty() ? image : resized_storage;

  const size_t plane = size_t(size) * size;
  float scale[3], shift[3];  // (p / 255 - mean) / std = p * scale + shift
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * norm.std[c]);
    shift[c] = -norm.mean[c] / norm.std[c];
  }
  const uint8_t* p = src.pixels.data();
  for (size_t i = 0; i < plane; ++i) {
    chw[i] = float(p[3 * i]) * scale[0] + shift[0];
    chw[plane + i] = float(p[3 * i + 1]) * scale[1] + shift[1];
    chw[2 * plane + i] = float(p[3 * i + 2]) * scale[2] + shift[2];
  }
}

}  // namespace ffr::data
