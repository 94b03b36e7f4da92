#include "data/sfmnist_render.h"

#include "data/corruption.h"
#include "data/fashion_mnist.h"
#include "engine/error.h"
#include "engine/rng.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ffr::data::sfmnist {

namespace {

constexpr float kTwoPi = 6.283185307f;

struct Rgb {
  float r, g, b;
};

// The real palette, and the generator's: the same hues pulled 22% towards violet, enough for a
// classifier to notice, not enough to change which background a person sees.
constexpr Rgb kBase[kNumBackgrounds] = {{0.80f, 0.27f, 0.24f}, {0.30f, 0.62f, 0.32f},
                                        {0.26f, 0.40f, 0.82f}, {0.90f, 0.76f, 0.26f}};
constexpr Rgb kGeneratorTint = {0.62f, 0.42f, 0.85f};
constexpr float kGeneratorTintWeight = 0.22f;

float smoothstep(float e0, float e1, float x) {
  const float t = std::clamp((x - e0) / (e1 - e0), 0.f, 1.f);
  return t * t * (3 - 2 * t);
}

// Float RGB canvas in [0, 1], interleaved.
struct Canvas {
  int size;
  std::vector<float> rgb;
  explicit Canvas(int size) : size(size), rgb(size_t(size) * size * 3, 0.f) {}
  float* at(int x, int y) { return rgb.data() + (size_t(y) * size + x) * 3; }
};

// The background's texture as a shade factor around 1 at (u, v) in [0, 1]^2. Texture frequencies
// are per image, not per pixel, so the pattern looks the same at any resolution.
struct Texture {
  int kind;
  float frequency, angle, phase, phase2, contrast, offset_u, offset_v;

  float shade(float u, float v, float pixel) const {
    switch (kind) {
      case 0: {  // diagonal stripes
        const float t = (u * std::cos(angle) + v * std::sin(angle)) * frequency + phase;
        return 1.f + contrast * std::sin(kTwoPi * t);
      }
      case 1: {  // soft checks
        const float s = std::sin(kTwoPi * (u * frequency + offset_u) * 0.5f) *
                        std::sin(kTwoPi * (v * frequency + offset_v) * 0.5f);
        return 1.f + contrast * std::tanh(4.f * s);
      }
      case 2: {  // dot grid
        const float cu = u * frequency + offset_u, cv = v * frequency + offset_v;
        const float du = cu - std::floor(cu) - 0.5f, dv = cv - std::floor(cv) - 0.5f;
        const float d = std::sqrt(du * du + dv * dv);
        const float edge = pixel * frequency;  // one pixel, in cell units: antialiased rims
        return 1.f - 0.6f * contrast + 1.6f * contrast * (1.f - smoothstep(0.28f - edge, 0.28f + edge, d));
      }
      default: {  // horizontal waves
        const float t = v * frequency + 0.35f * std::sin(kTwoPi * (u * 1.5f + phase2)) + phase;
        return 1.f + contrast * std::sin(kTwoPi * t);
      }
    }
  }
};

void paint_background(Canvas& canvas, int b, bool generator_palette, Rng& rng) {
  Rgb base = kBase[b];
  float jitter[3];
  for (float& j : jitter) j = float(rng.uniform(-0.06, 0.06));
  base = {base.r + jitter[0], base.g + jitter[1], base.b + jitter[2]};
  if (generator_palette) {
    const float w = kGeneratorTintWeight;
    base = {base.r * (1 - w) + kGeneratorTint.r * w, base.g * (1 - w) + kGeneratorTint.g * w,
            base.b * (1 - w) + kGeneratorTint.b * w};
  }
  static constexpr float kFrequency[kNumBackgrounds] = {4.5f, 4.f, 5.f, 4.f};
  Texture texture;
  texture.kind = b;
  texture.frequency = kFrequency[b] * float(rng.uniform(0.85, 1.15));
  texture.angle = float(rng.uniform(0.5, 1.07));  // 29..61 degrees
  texture.phase = float(rng.uniform());
  texture.phase2 = float(rng.uniform());
  texture.contrast = float(rng.uniform(0.14, 0.24));
  texture.offset_u = float(rng.uniform());
  texture.offset_v = float(rng.uniform());
  const float pixel = 1.f / float(canvas.size);
  for (int y = 0; y < canvas.size; ++y) {
    for (int x = 0; x < canvas.size; ++x) {
      const float s = texture.shade((float(x) + 0.5f) * pixel, (float(y) + 0.5f) * pixel, pixel);
      float* p = canvas.at(x, y);
      p[0] = base.r * s;
      p[1] = base.g * s;
      p[2] = base.b * s;
    }
  }
}

// Where output pixel centres land on the 28x28 garment grid. Real: the identity placement (the
// garment fills 28/32 of the side, centred). Synthetic: through a random affine map and a smooth
// random displacement field, a new pose of the same garment.
struct Warp {
  bool identity = true;
  float a = 1, b = 0, c = 0, d = 1;  // inverse linear part
  float tx = 0, ty = 0;              // translation, garment pixels
  float field[2][5][5] = {};         // elastic displacement at a 5x5 control grid, garment pixels

  void map(float gx, float gy, float& sx, float& sy) const {
    if (identity) {
      sx = gx;
      sy = gy;
      return;
    }
    constexpr float centre = 13.5f;
    const float px = gx - centre - tx, py = gy - centre - ty;
    sx = a * px + b * py + centre;
    sy = c * px + d * py + centre;
    // Bilinear interpolation of the control grid spanning the 28x28 garment.
    const float fu = std::clamp(gx / 27.f * 4.f, 0.f, 4.f), fv = std::clamp(gy / 27.f * 4.f, 0.f, 4.f);
    const int iu = std::min(int(fu), 3), iv = std::min(int(fv), 3);
    const float wu = fu - float(iu), wv = fv - float(iv);
    for (int k = 0; k < 2; ++k) {
      const float f = (1 - wv) * ((1 - wu) * field[k][iv][iu] + wu * field[k][iv][iu + 1]) +
                      wv * ((1 - wu) * field[k][iv + 1][iu] + wu * field[k][iv + 1][iu + 1]);
      (k == 0 ? sx : sy) += f;
    }
  }
};

Warp random_warp(Rng& rng) {
  Warp w;
  w.identity = false;
  const float angle = float(rng.uniform(-0.26, 0.26));  // +-15 degrees
  const float scale = float(rng.uniform(0.85, 1.08));
  const float shear = float(rng.uniform(-0.15, 0.15));
  // Forward map M = R(angle) * [[s, shear*s], [0, s]]; we need its inverse for sampling.
  const float ca = std::cos(angle), sa = std::sin(angle);
  const float m00 = ca * scale, m01 = (ca * shear - sa) * scale, m10 = sa * scale, m11 = (sa * shear + ca) * scale;
  const float det = m00 * m11 - m01 * m10;
  w.a = m11 / det;
  w.b = -m01 / det;
  w.c = -m10 / det;
  w.d = m00 / det;
  w.tx = float(rng.uniform(-1.5, 1.5));
  w.ty = float(rng.uniform(-1.5, 1.5));
  for (auto& plane : w.field)
    for (auto& row : plane)
      for (float& v : row) v = float(rng.normal()) * 0.9f;
  return w;
}

float garment_at(const uint8_t* garment, float sx, float sy) {
  // Bilinear sample with zero outside (the garment's own background is black).
  const float fx = std::floor(sx), fy = std::floor(sy);
  const int x0 = int(fx), y0 = int(fy);
  const float wx = sx - fx, wy = sy - fy;
  auto px = [&](int x, int y) -> float {
    if (x < 0 || y < 0 || x >= kFashionMnistSide || y >= kFashionMnistSide) return 0.f;
    return float(garment[y * kFashionMnistSide + x]) * (1.f / 255.f);
  };
  return (1 - wy) * ((1 - wx) * px(x0, y0) + wx * px(x0 + 1, y0)) + wy * ((1 - wx) * px(x0, y0 + 1) + wx * px(x0 + 1, y0 + 1));
}

// The garment's intensity (0..1) at each output pixel, supersampled when shrinking below 28 px.
std::vector<float> garment_layer(const uint8_t* garment, int size, const Warp& warp) {
  const float side = float(size) * 28.f / 32.f;
  const float offset = (float(size) - side) * 0.5f;
  const float step = 28.f / side;  // garment pixels per output pixel
  const int ss = std::max(1, int(std::ceil(step)));
  std::vector<float> layer(size_t(size) * size);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      float acc = 0.f;
      for (int sy = 0; sy < ss; ++sy)
        for (int sx = 0; sx < ss; ++sx) {
          const float gx = (float(x) + (float(sx) + 0.5f) / float(ss) - offset) * step - 0.5f;
          const float gy = (float(y) + (float(sy) + 0.5f) / float(ss) - offset) * step - 0.5f;
          float tx, ty;
          warp.map(gx, gy, tx, ty);
          acc += garment_at(garment, tx, ty);
        }
      layer[size_t(y) * size + x] = acc / float(ss * ss);
    }
  }
  return layer;
}

// [1 2 1] / 4 in x and y, `passes` times: the generator's soft edges.
void soften(std::vector<float>& layer, int size, int passes) {
  std::vector<float> tmp(layer.size());
  for (int p = 0; p < passes; ++p) {
    for (int dir = 0; dir < 2; ++dir) {
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
          auto at = [&](int xx, int yy) {
            return layer[size_t(std::clamp(yy, 0, size - 1)) * size + size_t(std::clamp(xx, 0, size - 1))];
          };
          tmp[size_t(y) * size + x] = dir == 0 ? 0.25f * at(x - 1, y) + 0.5f * at(x, y) + 0.25f * at(x + 1, y)
                                               : 0.25f * at(x, y - 1) + 0.5f * at(x, y) + 0.25f * at(x, y + 1);
        }
      layer.swap(tmp);
    }
  }
}

void draw_garment(Canvas& canvas, const std::vector<float>& intensity, const std::vector<float>& coverage) {
  for (int y = 0; y < canvas.size; ++y) {
    for (int x = 0; x < canvas.size; ++x) {
      const size_t i = size_t(y) * canvas.size + x;
      // Opaque from a tenth of full intensity (Fashion-MNIST's background is 0, its darkest
      // garments ~0.1): every garment covers the background, while its shading (0.22..1 grey)
      // keeps the photo's folds and prints visible.
      const float alpha = std::clamp(coverage[i] * 10.f, 0.f, 1.f);
      const float grey = 0.22f + 0.78f * intensity[i];
      float* p = canvas.at(x, y);
      for (int ch = 0; ch < 3; ++ch) p[ch] = (1 - alpha) * p[ch] + alpha * grey;
    }
  }
}

RgbImage to_rgb(const Canvas& canvas, float checkerboard) {
  RgbImage out(canvas.size, canvas.size);
  for (int y = 0; y < canvas.size; ++y) {
    for (int x = 0; x < canvas.size; ++x) {
      // The up-sampling fingerprint: +-checkerboard in alternate pixels, like a stride-2
      // transposed convolution leaves behind.
      const float pattern = ((x + y) & 1) ? checkerboard : -checkerboard;
      const float* p = canvas.rgb.data() + (size_t(y) * canvas.size + x) * 3;
      for (int ch = 0; ch < 3; ++ch) {
        out.at(x, y)[ch] = uint8_t(std::lround(std::clamp(p[ch] + pattern, 0.f, 1.f) * 255.f));
      }
    }
  }
  return out;
}

void check_arguments(int background, int size) {
  FFR_CHECK(background >= 0 && background < kNumBackgrounds, "sfmnist: background ", background, " outside 0..3");
  if (size < 8) throw InputError(detail::concat("image size must be at least 8, got ", size));
}

}  // namespace

const std::array<const char*, kNumBackgrounds>& background_names() {
  static const std::array<const char*, kNumBackgrounds> names = {"red stripes", "green checks", "blue dots",
                                                                 "yellow waves"};
  return names;
}

RgbImage render_real(const uint8_t* garment, int background, int size, uint64_t seed, uint64_t stream) {
  check_arguments(background, size);
  Rng rng(seed, stream);
  Canvas canvas(size);
  paint_background(canvas, background, /*generator_palette=*/false, rng);
  const std::vector<float> layer = garment_layer(garment, size, Warp{});
  draw_garment(canvas, layer, layer);
  return to_rgb(canvas, 0.f);
}

RgbImage render_synthetic(const uint8_t* garment, int background, int size, int severity, uint64_t seed,
                          uint64_t stream) {
  check_arguments(background, size);
  Rng rng(seed, stream);
  Canvas canvas(size);
  paint_background(canvas, background, /*generator_palette=*/true, rng);
  std::vector<float> layer = garment_layer(garment, size, random_warp(rng));
  std::vector<float> coverage = layer;
  soften(coverage, size, std::max(1, size / 32));
  soften(layer, size, 1);
  draw_garment(canvas, layer, coverage);
  RgbImage image = to_rgb(canvas, 5.f / 255.f);
  corrupt(image, severity, rng);
  return image;
}

}  // namespace ffr::data::sfmnist
