#include "kernels/normalize_images.h"

namespace ffr {

void normalize_images_cpu(const uint8_t* hwc, float* nchw, int64_t images, int64_t plane, const PixelAffine& affine) {
  for (int64_t n = 0; n < images; ++n) {
    const uint8_t* p = hwc + n * plane * 3;
    float* out = nchw + n * plane * 3;
    for (int64_t i = 0; i < plane; ++i) {
      out[i] = float(p[3 * i]) * affine.scale[0] + affine.shift[0];
      out[plane + i] = float(p[3 * i + 1]) * affine.scale[1] + affine.shift[1];
      out[2 * plane + i] = float(p[3 * i + 2]) * affine.scale[2] + affine.shift[2];
    }
  }
}

}  // namespace ffr
