#include "data/image.h"

#include "engine/error.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>

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
// stb_image_resize 0.97 asserts that each output pixel's filter weights sum to 0.9..1.1 before
// it normalises them to 1, and that check fails for ordinary sizes (a triangle-filter shrink
// of 263 -> 224 or 41 -> 32 px), so a build without NDEBUG aborted on real images. Its asserts
// are off in our Release builds; they are off in every build now, so all run the same code.
#define STBIR_ASSERT(x) ((void)0)
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

// Where a JPEG's first segment starts, or 0 when stb would not take `bytes` for a JPEG: stb's
// test is its marker reader meeting SOI first (0xFF, any number of 0xFF fill bytes, 0xD8).
size_t jpeg_body(const std::string& bytes) {
  if (bytes.empty() || uint8_t(bytes[0]) != 0xFF) return 0;
  size_t i = 1;
  while (i < bytes.size() && uint8_t(bytes[i]) == 0xFF) ++i;
  return i < bytes.size() && uint8_t(bytes[i]) == 0xD8 ? i + 1 : 0;
}

bool is_jpeg(const std::string& bytes) { return jpeg_body(bytes) != 0; }

// stb_image 2.27 (Debian 12's libstb-dev) writes past its Huffman tables when a DHT segment
// declares more than 256 codes (CVE-2021-37789, checked upstream since 2.28): true when stb
// would meet such a table in this JPEG. The segments up to the first scan are walked as stb
// walks them (so EXIF or ICC payloads are skipped by their lengths); from the first scan's data
// on, where stb's position depends on the entropy decoder, every 0xFF 0xC4 is checked, which
// covers every DHT stb can reach (its marker reader always sees 0xFF right before the 0xC4).
bool jpeg_has_oversized_huffman_table(const std::string& bytes) {
  const size_t n = bytes.size();
  auto byte_at = [&](size_t k) -> unsigned { return k < n ? uint8_t(bytes[k]) : 0u; };  // stb reads 0 past the end
  auto be16 = [&](size_t k) -> size_t { return byte_at(k) << 8 | byte_at(k + 1); };
  // The DHT segment whose length field is at k, parsed as stbi__process_marker parses it.
  auto dht_overflows = [&](size_t k) {
    long left = long(be16(k)) - 2;
    k += 2;
    while (left > 0 && k < n) {  // past the end stb reads zeros: empty tables
      const unsigned q = byte_at(k++);
      if (q >> 4 > 1 || (q & 15) > 3) return false;  // stb refuses the segment here
      unsigned codes = 0;
      for (int b = 0; b < 16; ++b) codes += byte_at(k++);
      if (codes > 256) return true;
      k += codes;
      left -= 17 + long(codes);
    }
    return false;
  };
  auto any_from = [&](size_t k) {
    for (; k + 1 < n; ++k) {
      if (uint8_t(bytes[k]) == 0xFF && uint8_t(bytes[k + 1]) == 0xC4 && dht_overflows(k + 2)) return true;
    }
    return false;
  };
  size_t i = jpeg_body(bytes);
  while (i < n) {
    if (byte_at(i++) != 0xFF) continue;  // padding between segments (stb skips it, or stops)
    unsigned m = byte_at(i++);
    while (m == 0xFF && i < n) m = byte_at(i++);  // fill bytes
    if (m == 0xD9) return false;          // EOI: stb stops here
    if (i + 2 > n || be16(i) < 2) return any_from(i);
    const size_t length = be16(i);
    if (m == 0xC4 && dht_overflows(i)) return true;
    if (m == 0xDA) return any_from(i + length);  // SOS: entropy-coded data follows
    const bool skipped_by_length = m == 0xC0 || m == 0xC1 || m == 0xC2 || m == 0xC4 || m == 0xDB ||
                                   m == 0xDC || m == 0xDD || (m >= 0xE0 && m <= 0xEF) || m == 0xFE;
    if (!skipped_by_length) return any_from(i);  // a marker stb refuses: check the rest anyway
    i += length;
  }
  return false;
}

bool is_png(const std::string& bytes) {
  return bytes.size() >= 8 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

// A PNG chunk whose declared length runs past the end of the file, walked as stb walks the
// chunks (from the signature to IEND): "" when every chunk fits. stb grows its IDAT buffer to
// the declared length before it reads the data, so one corrupt length field would make a
// 100-byte file allocate up to 4 GiB.
std::string png_chunk_overrun(const std::string& bytes) {
  const size_t n = bytes.size();
  size_t at = 8;
  while (at + 8 <= n) {
    const uint64_t length = uint64_t(uint8_t(bytes[at])) << 24 | uint64_t(uint8_t(bytes[at + 1])) << 16 |
                            uint64_t(uint8_t(bytes[at + 2])) << 8 | uint64_t(uint8_t(bytes[at + 3]));
    const std::string type = bytes.substr(at + 4, 4);
    if (length > n - (at + 8)) {
      const bool printable = std::all_of(type.begin(), type.end(), [](char c) { return std::isalpha(uint8_t(c)); });
      return detail::concat(printable ? "chunk '" + type + "'" : std::string("a chunk"), " at byte ", at, " declares ",
                            length, " bytes, only ", n - (at + 8), " follow");
    }
    if (type == "IEND") break;
    at += 12 + length;  // header, data, CRC
  }
  return "";
}

// Refuses, before stb allocates anything, an image over the size limits or one whose declared
// size its bytes cannot hold. stb allocates its buffers from the header's width and height
// (PNG: the whole inflated stream up front; JPEG: every component plane) before it reads any
// pixel data, so without this a 100-byte file declaring 16384 x 16384 asks for gigabytes.
// The bounds are ones no valid file breaks:
// - PNG: deflate expands at most 1032:1, and the inflated stream holds at least one filter
//   byte per row plus width * height * bits-per-pixel bits;
// - JPEG (baseline or progressive, Huffman-coded: all stb reads): every 8x8 block of every
//   component codes its DC coefficient in at least one bit, and subsampling leaves at least
//   one block per 128 pixels, so a JPEG holds at most 1024 pixels per byte.
void check_declared_size(const std::string& bytes, const std::string& name) {
  if (is_png(bytes)) {
    const std::string overrun = png_chunk_overrun(bytes);
    if (!overrun.empty()) throw InputError(detail::concat(name, ": truncated or corrupt PNG (", overrun, ")"));
  }
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size()), &w, &h,
                             &channels)) {
    return;  // no readable header: stbi_load fails on it too, saying why
  }
  const uint64_t pixels = uint64_t(w) * uint64_t(h);
  if (w > kMaxImageSide || h > kMaxImageSide) {
    throw InputError(detail::concat(name, ": image is ", w, "x", h, ", larger than the decoder accepts (at most ",
                                    kMaxImageSide, " px a side)"));
  }
  const uint64_t size = bytes.size();
  if (is_png(bytes)) {
    uint64_t bits_per_pixel = 1;  // the least any PNG uses; exact when IHDR comes first (always, but for Apple's CgBI)
    if (bytes.size() >= 29 && bytes.compare(12, 4, "IHDR") == 0) {
      const uint8_t depth = uint8_t(bytes[24]), colour = uint8_t(bytes[25]);
      const int samples = colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1;
      bits_per_pixel = uint64_t(samples) * std::max<uint8_t>(depth, 1);
    }
    const uint64_t least_inflated = uint64_t(h) + pixels * bits_per_pixel / 8;
    if (least_inflated > 1032 * size + 1024) {
      throw InputError(detail::concat(name, ": PNG declares ", w, "x", h, " pixels, more than its ", size,
                                      " bytes can hold (truncated or corrupt)"));
    }
  } else if (is_jpeg(bytes)) {
    if (pixels > 1024 * size + 4096) {
      throw InputError(detail::concat(name, ": JPEG declares ", w, "x", h, " pixels, more than its ", size,
                                      " bytes can hold (truncated or corrupt)"));
    }
  }
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
  if (bytes.size() > size_t(std::numeric_limits<int>::max())) {
    throw InputError(detail::concat(name, ": image file of ", bytes.size(), " bytes is too large (at most 2 GiB)"));
  }
  if (is_jpeg(bytes) && !jpeg_has_end_marker(bytes)) {
    throw InputError(detail::concat(name, ": truncated JPEG (no end-of-image marker)"));
  }
  if (is_jpeg(bytes) && jpeg_has_oversized_huffman_table(bytes)) {
    throw InputError(detail::concat(name, ": corrupt JPEG (a Huffman table declares more than 256 codes)"));
  }
  check_declared_size(bytes, name);
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
  std::error_code ec;
  const auto file_size = std::filesystem::file_size(path, ec);
  if (!ec && file_size > uintmax_t(std::numeric_limits<int>::max())) {
    throw InputError(detail::concat(name, ": image file of ", file_size, " bytes is too large (at most 2 GiB)"));
  }
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
