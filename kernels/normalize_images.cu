#include "engine/cuda/context.h"
#include "engine/error.h"
#include "kernels/normalize_images.h"

namespace ffr {

namespace {

// A thread per output float, in output order (coalesced stores; the byte loads are 3 apart within
// a warp's 96-byte span). blockIdx.y is the image and channel, so no division per element.
__global__ void normalize_images_kernel(const uint8_t* hwc, float* nchw, int64_t plane, PixelAffine affine) {
  const int channel = int(blockIdx.y % 3);
  const int64_t image = blockIdx.y / 3;
  const uint8_t* p = hwc + image * plane * 3 + channel;
  float* out = nchw + (image * 3 + channel) * plane;
  const float scale = affine.scale[channel], shift = affine.shift[channel];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < plane; i += int64_t(gridDim.x) * blockDim.x) {
    // __fmul_rn/__fadd_rn: no FMA contraction, so the values equal the CPU reference bit for bit.
    out[i] = __fadd_rn(__fmul_rn(float(p[3 * i]), scale), shift);
  }
}

}  // namespace

void normalize_images_cuda(const uint8_t* hwc, float* nchw, int64_t images, int64_t plane, const PixelAffine& affine) {
  if (images == 0 || plane == 0) return;
  FFR_CHECK(images * 3 <= 65535, "normalize_images: ", images, " images in one launch (at most 21845)");
  const int threads = 256;
  int64_t blocks_x = (plane + threads - 1) / threads;
  if (blocks_x > 1024) blocks_x = 1024;  // a grid-stride loop covers the rest
  const dim3 grid{unsigned(blocks_x), unsigned(images * 3)};
  normalize_images_kernel<<<grid, threads, 0, cuda::stream()>>>(hwc, nchw, plane, affine);
  FFR_CUDA_CHECK_LAUNCH();
}

}  // namespace ffr
