#include "data/image.h"

#include "engine/error.h"

#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

// stb in this one file, with internal linkage (the *_STATIC macros), so another part of the
// engine that also embeds stb can never collide with these symbols at link time.
namespace {
unsigned char* zlib_compress_for_stb(unsigned char* data, int data_len, int* out_len, int quality);
}
#define STBIW_ZLIB_COMPRESS zlib_compress_for_stb
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#include <stb/stb_image.h>
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace {
unsigned char* zlib_compress_for_stb(unsigned char* data, int data_len, int* out_len, int /*quality*/) {
  uLongf size = compressBound(uLong(data_len));
  auto* out = static_cast<unsigned char*>(std::malloc(size));  // stb frees it with free()
  if (!out) return nullptr;
  if (compress2(out, &size, data, uLong(data_len), 6) != Z_OK) {
    std::free(out);
    return nullptr;
  }
  *out_len = int(size);
  return out;
}
}  // namespace

namespace ffr::data {

namespace {

bool is_jpeg(const std::string& bytes) {
  return bytes.size() >= 3 && uint8_t(bytes[0]) == 0xFF && uint8_t(bytes[1]) == 0xD8 &&
         uint8_t(bytes[2]) == 0xFF;
}

// stb_image decodes a cut-off JPEG without complaint (it pads the missing scan data), so a
// truncated download would train as a grey smear. A JPEG must contain its end-of-image marker.
bool jpeg_has_end_marker(const std::string& bytes) {
  for (size_t i = bytes.size(); i >= 2; --i) {
    if (uint8_t(bytes[i - 2]) == 0xFF && uint8_t(bytes[i - 1]) == 0xD9) return true;
  }
  return false;
}

}  // namespace

RgbImage decode_image(const std::string& bytes, const std::string& name) {
  if (bytes.empty()) throw InputError(detail::concat(name, ": empty image file"));
  if (is_jpeg(bytes) && !jpeg_has_end_marker(bytes)) {
    throw InputError(detail::concat(name, ": truncated JPEG (no end-of-image marker)"));
  }
  int w = 0, h = 0, channels = 0;
  unsigned char* data = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                              int(bytes.size()), &w, &h, &channels, 3);
  if (!data) {
    throw InputError(detail::concat(name, ": cannot decode image (", stbi_failure_reason(),
                                    "; PNG and JPEG are supported)"));
  }
  RgbImage image;
  image.width = w;
  image.height = h;
  image.pixels.assign(data, data + size_t(w) * h * 3);
  stbi_image_free(data);
  return image;
}

RgbImage read_image(const std::filesystem::path& path, const std::string& context) {
  const std::string name = context.empty() ? path.string() : detail::concat(path.string(), " (", context, ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(detail::concat(name, ": image file not found or unreadable"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode_image(bytes, name);
}

RgbImage resize_bilinear(const RgbImage& image, int width, int height) {
  FFR_CHECK(width > 0 && height > 0, "resize_bilinear: bad target size ", width, "x", height);
  if (image.width == width && image.height == height) return image;
  RgbImage out(width, height);
  const int ok = stbir_resize_uint8_generic(image.pixels.data(), image.width, image.height, image.width * 3,
                                            out.pixels.data(), width, height, width * 3, 3,
                                            STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                                            STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
  FFR_CHECK(ok, "resize_bilinear: stb_image_resize failed for ", image.width, "x", image.height, " -> ",
            width, "x", height);
  return out;
}

std::string encode_png(const RgbImage& image) {
  std::string out;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
  };
  const int ok = stbi_write_png_to_func(append, &out, image.width, image.height, 3, image.pixels.data(),
                                        image.width * 3);
  FFR_CHECK(ok, "encode_png failed for a ", image.width, "x", image.height, " image");
  return out;
}

void write_png(const std::filesystem::path& path, const RgbImage& image) {
  const std::string bytes = encode_png(image);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw InputError(detail::concat(path.string(), ": cannot write PNG"));
}

}  // namespace ffr::data
