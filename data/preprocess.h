// The model's input transform (the paper's: resize to the input size, ToTensor, ImageNet
// mean/std normalisation, no augmentation), written straight into a caller-owned buffer.
#pragma once

#include "data/image.h"
#include "kernels/normalize_images.h"

#include <cstdint>

namespace ffr::data {

struct Normalization {
  float mean[3];
  float std[3];
  // torchvision's ImageNet statistics, which the paper's pretrained backbones expect.
  static Normalization imagenet() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }
  static Normalization identity() { return {{0.f, 0.f, 0.f}, {1.f, 1.f, 1.f}}; }  // pixels / 255
};

// Resizes `image` to size x size (bilinear, ignoring aspect ratio as the paper's Resize((s, s))
// does) and writes float32 planes C,H,W to `chw` (3 * size * size floats):
// chw[c][y][x] = (pixel / 255 - mean[c]) / std[c].
void preprocess_into(const RgbImage& image, int size, const Normalization& norm, float* chw);

// The same in two halves, for the CUDA loader: the resized 8-bit pixels (interleaved RGB,
// 3 * size * size bytes), then normalize_images (kernels/normalize_images.h) with pixel_affine.
void resize_into(const RgbImage& image, int size, uint8_t* hwc);
PixelAffine pixel_affine(const Normalization& norm);

}  // namespace ffr::data
