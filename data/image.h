// Images on the host: decoding (stb_image), resizing (stb_image_resize) and PNG encoding
// (stb_image_write). Pixels are 8-bit RGB, row-major, interleaved (HWC).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ffr::data {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3

  RgbImage() = default;
  RgbImage(int width, int height) : width(width), height(height), pixels(size_t(width) * height * 3, 0) {}
  uint8_t* at(int x, int y) { return pixels.data() + (size_t(y) * width + x) * 3; }
  const uint8_t* at(int x, int y) const { return pixels.data() + (size_t(y) * width + x) * 3; }
};

// The largest image the decoder accepts: 16384 px a side, so at most 256 MP (768 MB as RGB).
constexpr int kMaxImageSide = 16384;

// Decodes PNG or JPEG bytes; grey, grey+alpha, RGB and RGBA all become RGB (alpha is dropped,
// as PIL's convert("RGB") does, so user data sets decode as they would in PyTorch).
// `name` labels errors. Throws ffr::InputError for undecodable or truncated data, and, before
// allocating any pixel buffer, for images over the limits above or whose declared size their
// bytes cannot hold (so a tiny corrupt file cannot make the decoder allocate gigabytes).
RgbImage decode_image(const std::string& bytes, const std::string& name);

// Reads and decodes a file; errors name the file (and `context`, e.g. "manifest.csv:12").
RgbImage read_image(const std::filesystem::path& path, const std::string& context = "");

// What an image file declares, read without decoding its pixels.
struct ImageHeader {
  int width = 0, height = 0, channels = 0;
};

// Reads a file and runs every check decode_image makes before it decodes (stb_image's info call
// on the header, the size limits, the PNG chunk walk, the JPEG segment walk and end marker), so a
// whole data set can be checked in a fraction of a decode's time (`ffr-bench inspect
// --check-images`). Throws InputError naming the file (and `context`) as read_image does.
ImageHeader read_image_header(const std::filesystem::path& path, const std::string& context = "");

// Resizes to width x height with a bilinear (triangle) filter, antialiased when shrinking
// like PIL's/torchvision's bilinear resize; edges clamp. Same size returns a copy.
RgbImage resize_bilinear(const RgbImage& image, int width, int height);

// PNG bytes of an image (zlib level 6: about as small as stb's default, several times faster).
std::string encode_png(const RgbImage& image);

// Writes a PNG file (not atomic: callers build into a staging folder).
void write_png(const std::filesystem::path& path, const RgbImage& image);

}  // namespace ffr::data
