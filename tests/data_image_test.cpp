#include "data/image.h"
#include "data/preprocess.h"
#include "data_test_support.h"

// The test writes grey, RGBA and JPEG files with stb (internal linkage, like the library's copy).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

#include <cmath>

namespace ffr::data {
namespace {

using testing::expect_input_error;
using testing::TempDir;
using testing::write_file;

std::string encode(int w, int h, int channels, const std::vector<uint8_t>& pixels, bool jpeg = false) {
  std::string out;
  auto append = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(size)); };
  if (jpeg) {
    stbi_write_jpg_to_func(append, &out, w, h, channels, pixels.data(), 95);
  } else {
    stbi_write_png_to_func(append, &out, w, h, channels, pixels.data(), w * channels);
  }
  return out;
}

TEST(DataImage, GreyAndRgbaBecomeRgb) {
  const RgbImage grey = decode_image(encode(2, 1, 1, {10, 200}), "grey.png");
  ASSERT_EQ(grey.width, 2);
  EXPECT_EQ(grey.pixels, (std::vector<uint8_t>{10, 10, 10, 200, 200, 200}));
  // Alpha is dropped, as PIL's convert("RGB") does.
  const RgbImage rgba = decode_image(encode(1, 1, 4, {1, 2, 3, 0}), "rgba.png");
  EXPECT_EQ(rgba.pixels, (std::vector<uint8_t>{1, 2, 3}));
  const RgbImage jpeg = decode_image(encode(8, 8, 3, std::vector<uint8_t>(8 * 8 * 3, 128), true), "x.jpg");
  EXPECT_EQ(jpeg.width, 8);
  EXPECT_NEAR(jpeg.pixels[0], 128, 2);
}

TEST(DataImage, PngRoundTripsExactly) {
  RgbImage image(3, 2);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = uint8_t(i * 13);
  EXPECT_EQ(decode_image(encode_png(image), "t.png").pixels, image.pixels);
}

TEST(DataImage, BadFilesNameTheFile) {
  TempDir dir;
  expect_input_error([&] { read_image(dir / "nope.png", "m.csv:7"); }, {"nope.png", "m.csv:7", "not found"});
  write_file(dir / "text.png", "this is not an image");
  expect_input_error([&] { read_image(dir / "text.png"); }, {"text.png", "cannot decode"});
  write_file(dir / "empty.png", "");
  expect_input_error([&] { read_image(dir / "empty.png"); }, {"empty.png", "empty"});

  std::vector<uint8_t> noise(16 * 16 * 3);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = uint8_t((i * 7919) % 251);
  const std::string png = encode(16, 16, 3, noise);
  write_file(dir / "cut.png", png.substr(0, png.size() / 2));
  expect_input_error([&] { read_image(dir / "cut.png"); }, {"cut.png"});
  const std::string jpg = encode(16, 16, 3, noise, true);
  write_file(dir / "cut.jpg", jpg.substr(0, jpg.size() / 2));
  expect_input_error([&] { read_image(dir / "cut.jpg"); }, {"cut.jpg", "truncated"});
}

TEST(DataImage, BilinearResizeKeepsFlatColoursAndInterpolates) {
  const RgbImage flat = resize_bilinear(testing::solid_image(5, 3, 40, 80, 120), 17, 9);
  for (size_t i = 0; i < flat.pixels.size(); i += 3) {
    ASSERT_EQ(flat.pixels[i], 40);
    ASSERT_EQ(flat.pixels[i + 2], 120);
  }
  // A black | white image doubled: the outer pixels keep their values, the two in the middle
  // are the 1/4 - 3/4 blends of bilinear with half-pixel centres (0.25 * 255 = 63.75).
  RgbImage edge(2, 1);
  std::fill(edge.pixels.begin() + 3, edge.pixels.end(), uint8_t(255));
  const RgbImage up = resize_bilinear(edge, 4, 1);
  EXPECT_EQ(up.at(0, 0)[0], 0);
  EXPECT_NEAR(up.at(1, 0)[0], 64, 1);
  EXPECT_NEAR(up.at(2, 0)[0], 191, 1);
  EXPECT_EQ(up.at(3, 0)[0], 255);
}

TEST(DataImage, PreprocessWritesNormalisedChwPlanes) {
  RgbImage image(2, 2);
  const uint8_t values[4][3] = {{0, 0, 0}, {255, 255, 255}, {255, 0, 0}, {10, 20, 30}};
  for (int i = 0; i < 4; ++i) std::copy(values[i], values[i] + 3, image.pixels.data() + 3 * i);
  const Normalization norm = Normalization::imagenet();
  std::vector<float> chw(3 * 4);
  preprocess_into(image, 2, norm, chw.data());
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) {
      const float expected = (values[i][c] / 255.f - norm.mean[c]) / norm.std[c];
      EXPECT_NEAR(chw[size_t(c * 4 + i)], expected, 1e-5f) << "channel " << c << " pixel " << i;
    }
}

}  // namespace
}  // namespace ffr::data
