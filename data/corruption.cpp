#include "data/corruption.h"

#include "engine/error.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ffr::data {

namespace {

uint8_t to_byte(float v) { return uint8_t(std::lround(std::clamp(v, 0.0f, 255.0f))); }

// ImageNet-C pixelate: shrink by factor c with a box filter, grow back by nearest neighbour.
void pixelate(RgbImage& image, float c) {
  const int w = std::max(1, int(image.width * c)), h = std::max(1, int(image.height * c));
  RgbImage small(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const int x0 = x * image.width / w, x1 = std::max(x0 + 1, (x + 1) * image.width / w);
      const int y0 = y * image.height / h, y1 = std::max(y0 + 1, (y + 1) * image.height / h);
      for (int ch = 0; ch < 3; ++ch) {
        int sum = 0;
        for (int yy = y0; yy < y1; ++yy)
          for (int xx = x0; xx < x1; ++xx) sum += image.at(xx, yy)[ch];
        small.at(x, y)[ch] = uint8_t((sum + (x1 - x0) * (y1 - y0) / 2) / ((x1 - x0) * (y1 - y0)));
      }
    }
  }
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* s = small.at(x * w / image.width, y * h / image.height);
      std::copy(s, s + 3, image.at(x, y));
    }
  }
}

// ImageNet-C defocus: convolve with a disk of `radius` pixels, the disk itself smoothed by a
// gaussian of `alias_sigma` (its "aliased disk"). Disk weights are area coverage per pixel (4x4
// supersampled), so radii under a pixel (small images) still blur a little instead of vanishing.
void defocus(RgbImage& image, float radius, float alias_sigma) {
  const int reach = int(std::ceil(radius + 3 * alias_sigma)) + 1;
  const int side = 2 * reach + 1;
  std::vector<float> disk(size_t(side) * side, 0.f);
  for (int dy = -reach; dy <= reach; ++dy) {
    for (int dx = -reach; dx <= reach; ++dx) {
      float inside = 0.f;
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) {
          const float px = dx + (sx + 0.5f) / 4 - 0.5f, py = dy + (sy + 0.5f) / 4 - 0.5f;
          inside += (px * px + py * py <= std::max(radius * radius, 0.25f)) ? 1.f / 16 : 0.f;
        }
      disk[size_t(dy + reach) * side + size_t(dx + reach)] = inside;
    }
  }
  std::vector<float> kernel = disk;
  if (alias_sigma > 0.05f) {
    std::vector<float> g(static_cast<size_t>(side));
    for (int d = -reach; d <= reach; ++d) g[size_t(d + reach)] = std::exp(-float(d * d) / (2 * alias_sigma * alias_sigma));
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x) {
        float acc = 0.f;
        for (int v = 0; v < side; ++v)
          for (int u = 0; u < side; ++u) {
            const int gx = x - u + reach, gy = y - v + reach;
            if (gx >= 0 && gx < side && gy >= 0 && gy < side) acc += disk[size_t(v) * side + size_t(u)] * g[size_t(gx)] * g[size_t(gy)];
          }
        kernel[size_t(y) * side + size_t(x)] = acc;
      }
  }
  float sum = 0.f;
  for (float k : kernel) sum += k;
  if (sum <= 0.f) return;
  for (float& k : kernel) k /= sum;
  const RgbImage src = image;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      float acc[3] = {0, 0, 0};
      for (int dy = -reach; dy <= reach; ++dy) {
        const int yy = std::clamp(y + dy, 0, image.height - 1);
        for (int dx = -reach; dx <= reach; ++dx) {
          const float k = kernel[size_t(dy + reach) * side + size_t(dx + reach)];
          if (k == 0.f) continue;
          const uint8_t* p = src.at(std::clamp(x + dx, 0, image.width - 1), yy);
          for (int ch = 0; ch < 3; ++ch) acc[ch] += k * p[ch];
        }
      }
      for (int ch = 0; ch < 3; ++ch) image.at(x, y)[ch] = to_byte(acc[ch]);
    }
  }
}

void gaussian_noise(RgbImage& image, float sigma, Rng& rng) {
  for (uint8_t& p : image.pixels) p = to_byte(float(p) + float(rng.normal()) * sigma * 255.f);
}

}  // namespace

void corrupt(RgbImage& image, int severity, Rng& rng) {
  if (severity < 0 || severity > kMaxSeverity) {
    throw InputError(detail::concat("severity must be in 0..", kMaxSeverity, ", got ", severity));
  }
  if (severity == 0) return;
  static constexpr float kPixelate[] = {0.6f, 0.5f, 0.4f, 0.3f, 0.25f};
  static constexpr float kDefocusRadius[] = {3, 4, 6, 8, 10};
  static constexpr float kDefocusAlias[] = {0.1f, 0.5f, 0.5f, 0.5f, 0.5f};
  static constexpr float kNoise[] = {0.08f, 0.12f, 0.18f, 0.26f, 0.38f};
  const int s = severity - 1;
  const float scale = float(std::max(image.width, image.height)) / 224.f;  // ImageNet-C lengths are at 224 px
  pixelate(image, kPixelate[s]);
  defocus(image, kDefocusRadius[s] * scale, kDefocusAlias[s] * scale);
  gaussian_noise(image, kNoise[s], rng);
}

}  // namespace ffr::data
