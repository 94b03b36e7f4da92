// 8-bit RGB images to the model's float32 input: interleaved pixels [N, H*W, 3] (uint8, as
// decoded and resized) -> planes [N, 3, H, W], out = p * scale[c] + shift[c], that is
// (p / 255 - mean[c]) / std[c] with scale = 1 / (255 std), shift = -mean / std.
//
// The data loader's CPU path (data/preprocess.cpp) calls the CPU reference per image; on CUDA the
// loader ships the uint8 pixels (a quarter of the float32 bytes) and this kernel normalises them
// on the compute stream. Both evaluate float(p) * scale + shift in float32 with one rounding per
// operation (no FMA on the device), so the GPU's batches equal the CPU's bit for bit.
#pragma once

#include <cstdint>

namespace ffr {

struct PixelAffine {
  float scale[3];
  float shift[3];
};

// `hwc`: images * plane * 3 bytes; `nchw`: images * 3 * plane floats.
void normalize_images_cpu(const uint8_t* hwc, float* nchw, int64_t images, int64_t plane, const PixelAffine& affine);
// Device pointers; queued on this thread's compute stream.
void normalize_images_cuda(const uint8_t* hwc, float* nchw, int64_t images, int64_t plane, const PixelAffine& affine);

}  // namespace ffr
