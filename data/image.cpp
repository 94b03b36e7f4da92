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
// stb_image allocates with plain malloc, and a corrupt JPEG can make it read memory it never
// wrote: the component planes of a baseline file whose scans leave a component out, the
// coefficients of a progressive one with no first DC scan for a component, every block after a
// scan ends early at a restart boundary, and its own tables (the stbi__jpeg struct). So such a
// file decoded to pixels from stale heap memory, different from run to run. With calloc they
// are zeros (libjpeg also zero-fills its coefficient buffers), and the result is the same every
// time. The checks in jpeg_structure_problem refuse the cases they can see; this covers the rest.
#define STBI_MALLOC(size) std::calloc(1, size)
#define STBI_REALLOC(pointer, size) std::realloc(pointer, size)
#define STBI_FREE(pointer) std::free(pointer)
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

// What makes stb_image 2.27 (Debian 12's libstb-dev) misbehave on a corrupt JPEG, found
// before stb sees the file; "" when none. The segments are walked as stb walks them: a segment
// by its length; after a scan header, on to the first 0xFF (run) followed by neither 0x00 nor a
// restart marker, the only place stb's entropy decoder can hand over to the next marker
// (wherever it stops, stb either goes on from there or refuses the file). Checked:
// - a DHT segment declaring more than 256 codes: stb writes past its tables
//   (CVE-2021-37789; checked by stb itself since 2.28);
// - a scan using a Huffman or quantisation table no earlier segment defined: stb decodes with
//   whatever its table memory holds (with plain malloc, stale heap data that sent its Huffman
//   decoder far out of bounds; zeros now that STBI_MALLOC is calloc, still no image). libjpeg
//   refuses both ("Quantization table 0x01 was not defined", "Bogus Huffman table definition");
// - an end-of-image marker before any scan: the file holds no image data, yet stb returns an
//   image (all zeros now, stale heap data before); libjpeg says "missing SOS marker";
// - a baseline (sequential) frame with a component no scan codes: stb leaves that pixel plane
//   as allocated (stale heap data before, zeros now: a strong colour cast where libjpeg, which
//   zero-fills coefficients, shows neutral chroma). A progressive frame is left alone: there
//   stb zero-fills coefficients too, and decodes such a file as libjpeg does.
// Where stb refuses the file anyway the walk stops early, saying nothing.
std::string jpeg_structure_problem(const std::string& bytes) {
  const size_t n = bytes.size();
  auto byte_at = [&](size_t k) -> unsigned { return k < n ? uint8_t(bytes[k]) : 0u; };  // stb reads 0 past the end
  auto be16 = [&](size_t k) -> size_t { return byte_at(k) << 8 | byte_at(k + 1); };
  bool dc_defined[4] = {}, ac_defined[4] = {}, quant_defined[4] = {};
  unsigned component_id[4] = {}, component_quant[4] = {}, components = 0;
  bool progressive = false;
  unsigned scans = 0;
  bool scanned[4] = {};  // per frame component: in some scan
  size_t i = jpeg_body(bytes);
  // stbi__get_marker, skipping any padding before it: the marker byte, or -1 at the end.
  auto next_marker = [&]() -> int {
    while (i < n && uint8_t(bytes[i]) != 0xFF) ++i;
    while (i < n && uint8_t(bytes[i]) == 0xFF) ++i;  // 0xFF and fill bytes
    return i < n ? int(uint8_t(bytes[i++])) : -1;
  };
  int m = next_marker();
  for (; m >= 0 && m != 0xD9; m = next_marker()) {  // 0xD9: end of image
    const size_t length = be16(i);
    if (i + 2 > n || length < 2) return "";  // stb refuses the segment
    const size_t end = i + length;
    if (m == 0xC4) {  // DHT: tables of (class, number, 16 code counts, symbols)
      for (size_t k = i + 2; k < end && k < n;) {
        const unsigned q = byte_at(k++);
        if (q >> 4 > 1 || (q & 15) > 3) return "";
        unsigned codes = 0;
        for (int b = 0; b < 16; ++b) codes += byte_at(k++);
        if (codes > 256) return detail::concat("a Huffman table declares ", codes, " codes (at most 256)");
        (q >> 4 ? ac_defined : dc_defined)[q & 15] = true;
        k += codes;
      }
    } else if (m == 0xDB) {  // DQT: tables of (precision, number, 64 values)
      for (size_t k = i + 2; k < end && k < n;) {
        const unsigned q = byte_at(k++);
        if (q >> 4 > 1 || (q & 15) > 3) return "";
        quant_defined[q & 15] = true;
        k += q >> 4 ? 128 : 64;
      }
    } else if (m == 0xC0 || m == 0xC1 || m == 0xC2) {  // SOF: components (id, sampling, quantisation table)
      progressive = m == 0xC2;
      components = byte_at(i + 7);
      if (components != 1 && components != 3 && components != 4) return "";
      for (unsigned c = 0; c < components; ++c) {
        component_id[c] = byte_at(i + 8 + 3 * c);
        component_quant[c] = byte_at(i + 10 + 3 * c) & 3;  // stb refuses > 3
      }
    } else if (m == 0xDA) {  // SOS: components (id, DC table << 4 | AC table), Ss, Se, Ah << 4 | Al
      const unsigned scan_components = byte_at(i + 2);
      if (scan_components < 1 || scan_components > 4 || length != 6 + 2 * scan_components) return "";
      const unsigned first_coefficient = byte_at(i + 3 + 2 * scan_components);
      const unsigned refining = byte_at(i + 5 + 2 * scan_components) >> 4;
      // The Huffman tables stb decodes this scan with: a baseline scan both; a progressive first
      // DC pass the DC table, an AC pass (first or refining) the AC one, and a DC refining pass
      // neither (it reads raw bits; encoders leave its selectors 0 whether or not table 0 exists).
      // stb refuses a progressive scan mixing DC and AC, so the two cases are all it decodes.
      const bool uses_dc = !progressive || (first_coefficient == 0 && refining == 0);
      const bool uses_ac = !progressive || first_coefficient != 0;
      for (unsigned c = 0; c < scan_components; ++c) {
        const unsigned id = byte_at(i + 3 + 2 * c), tables = byte_at(i + 4 + 2 * c);
        const unsigned dc = tables >> 4, ac = tables & 15;
        if (dc > 3 || ac > 3) return "";
        if (uses_dc && !dc_defined[dc]) return detail::concat("a scan uses DC Huffman table ", dc, ", never defined");
        if (uses_ac && !ac_defined[ac]) return detail::concat("a scan uses AC Huffman table ", ac, ", never defined");
        unsigned which = 0;
        while (which < components && component_id[which] != id) ++which;
        if (which == components) return "";  // no such component (or no frame header yet)
        scanned[which] = true;
        // Baseline stb dequantises while it decodes the scan; progressive only after the last
        // scan, but libjpeg wants the table by the component's first scan too, so no valid file
        // defines it later.
        if (!quant_defined[component_quant[which]]) {
          return detail::concat("a scan uses quantisation table ", component_quant[which], ", never defined");
        }
      }
      ++scans;
      // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte) or a restart marker.
      size_t k = end;
      for (;;) {
        while (k < n && uint8_t(bytes[k]) != 0xFF) ++k;
        while (k < n && uint8_t(bytes[k]) == 0xFF) ++k;
        if (k >= n) return "";
        const unsigned x = uint8_t(bytes[k]);
        if (x != 0x00 && (x < 0xD0 || x > 0xD7)) break;
        ++k;
      }
      i = k - 1;  // the 0xFF before the marker: next_marker reads it from there
      continue;
    } else if (!(m == 0xDC || m == 0xDD || (m >= 0xE0 && m <= 0xEF) || m == 0xFE)) {
      return "";  // stb refuses any other marker (DNL, DRI, APPn and COM it skips by length)
    }
    i = end;
  }
  if (m == 0xD9 && scans == 0) return "the end-of-image marker comes before any scan: no image data";
  for (unsigned c = 0; m == 0xD9 && !progressive && c < components; ++c) {
    if (!scanned[c]) return detail::concat("no scan codes component ", component_id[c], " of its ", components);
  }
  return "";
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

// stb_image 2.27 keeps a PNG's palette in an uninitialised 256-entry stack array and looks pixels
// up in it without checking their index against the PLTE chunk's length, so a palette image
// whose pixels index past its palette decoded to stale stack bytes, different from run to run
// (found with the fuzzer's corpus). libpng zero-fills its 256-entry palette: such pixels are
// black. So stb gets a copy in which each PLTE chunk of a palette image (colour type 3) holds 256
// entries, the file's own followed by zeros (stb does not check CRCs), or "" when no PLTE needs
// it. stb's own check that tRNS has no more values than the palette has entries would then pass
// a corrupt file, so it is made here, against the file's own PLTE. png_chunk_overrun has passed.
std::string png_with_full_palettes(const std::string& bytes, const std::string& name) {
  const size_t n = bytes.size();
  if (n < 29 || bytes.compare(12, 4, "IHDR") != 0 || uint8_t(bytes[25]) != 3) return "";
  auto be32 = [&](size_t k) {
    return size_t(uint8_t(bytes[k])) << 24 | size_t(uint8_t(bytes[k + 1])) << 16 | size_t(uint8_t(bytes[k + 2])) << 8 |
           size_t(uint8_t(bytes[k + 3]));
  };
  std::string out;
  size_t copied = 0, entries = 0;  // bytes of `bytes` already in `out`; the last PLTE's entries
  for (size_t at = 8; at + 8 <= n;) {
    const size_t length = be32(at);
    const std::string type = bytes.substr(at + 4, 4);
    if (type == "tRNS" && entries > 0 && length > entries) {
      throw InputError(detail::concat(name, ": corrupt PNG (tRNS holds ", length, " values for a palette of ", entries,
                                      " entries)"));
    }
    if (type == "PLTE" && length % 3 == 0 && length < 256 * 3) {  // stb refuses any other length
      if (out.empty()) out.reserve(n + 256 * 3);
      out.append(bytes, copied, at - copied);  // up to this chunk
      out.append(std::string("\x00\x00\x03\x00PLTE", 8));  // length 768
      out.append(bytes, at + 8, length);
      out.append(256 * 3 - length + 4, '\0');  // zero entries, then the CRC (unchecked)
      copied = std::min(n, at + 12 + length);  // the data fits (png_chunk_overrun); the CRC may not
    }
    if (type == "PLTE") entries = length / 3;
    if (type == "IEND") break;
    at += 12 + length;
  }
  if (out.empty()) return "";
  out.append(bytes, copied, std::string::npos);
  if (out.size() > size_t(std::numeric_limits<int>::max())) {
    throw InputError(detail::concat(name, ": image file is too large (at most 2 GiB)"));
  }
  return out;
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
  if (is_jpeg(bytes)) {
    const std::string problem = jpeg_structure_problem(bytes);
    if (!problem.empty()) throw InputError(detail::concat(name, ": corrupt JPEG (", problem, ")"));
  }
  check_declared_size(bytes, name);
  const std::string padded = is_png(bytes) ? png_with_full_palettes(bytes, name) : std::string();
  const std::string& input = padded.empty() ? bytes : padded;
  int w = 0, h = 0, channels = 0;
  unsigned char* data = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(input.data()),
                                              int(input.size()), &w, &h, &channels, 3);
  if (!data) {
    const char* reason = stbi_failure_reason();  // stb fails some corrupt files without setting one
    throw InputError(detail::concat(name, ": cannot decode image (", reason && *reason ? reason : "corrupt data",
                                    "; PNG and JPEG are supported)"));
  }
  RgbImage image;
  image.width = w;
  image.height = h;
  image.pixels.assign(data, data + size_t(w) * h * 3);
  stbi_image_free(data);
  return image;
}

namespace {

// The file's bytes, with the name errors give it ("path (context)").
std::string read_image_file(const std::filesystem::path& path, const std::string& context, std::string& name) {
  name = context.empty() ? path.string() : detail::concat(path.string(), " (", context, ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(detail::concat(name, ": image file not found or unreadable"));
  std::error_code ec;
  const auto file_size = std::filesystem::file_size(path, ec);
  if (!ec && file_size > uintmax_t(std::numeric_limits<int>::max())) {
    throw InputError(detail::concat(name, ": image file of ", file_size, " bytes is too large (at most 2 GiB)"));
  }
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

RgbImage read_image(const std::filesystem::path& path, const std::string& context) {
  std::string name;
  const std::string bytes = read_image_file(path, context, name);
  return decode_image(bytes, name);
}

ImageHeader read_image_header(const std::filesystem::path& path, const std::string& context) {
  std::string name;
  const std::string bytes = read_image_file(path, context, name);
  if (bytes.empty()) throw InputError(detail::concat(name, ": empty image file"));
  if (is_jpeg(bytes)) {
    if (!jpeg_has_end_marker(bytes)) throw InputError(detail::concat(name, ": truncated JPEG (no end-of-image marker)"));
    const std::string problem = jpeg_structure_problem(bytes);
    if (!problem.empty()) throw InputError(detail::concat(name, ": corrupt JPEG (", problem, ")"));
  }
  check_declared_size(bytes, name);
  ImageHeader header;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size()), &header.width,
                             &header.height, &header.channels)) {
    const char* reason = stbi_failure_reason();
    throw InputError(detail::concat(name, ": not a readable image (", reason && *reason ? reason : "corrupt header",
                                    "; PNG and JPEG are supported)"));
  }
  return header;
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
