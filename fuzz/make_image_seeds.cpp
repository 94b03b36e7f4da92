// Writes the image fuzz target's seed corpus (fuzz/corpus/image/): small PNGs and JPEGs in the
// layouts the decoder handles differently. Kept so the seeds can be made again:
//   g++ -std=c++17 -O1 fuzz/make_image_seeds.cpp -lz -o /tmp/make_image_seeds
//   /tmp/make_image_seeds fuzz/corpus/image
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::string out_dir;

void save(const std::string& name, const std::string& bytes) {
  std::ofstream(out_dir + "/" + name, std::ios::binary) << bytes;
}

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

// A w x h test pattern with `channels` samples per pixel: gradients plus a diagonal edge.
std::vector<uint8_t> pattern(int w, int h, int channels) {
  std::vector<uint8_t> p(size_t(w) * h * channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        p[(size_t(y) * w + x) * channels + c] = uint8_t((x * 37 + y * 11 + c * 80 + (x > y ? 90 : 0)) & 0xFF);
  return p;
}

void stb_png(const std::string& name, int w, int h, int channels) {
  std::string out;
  stbi_write_png_to_func(append, &out, w, h, channels, pattern(w, h, channels).data(), w * channels);
  save(name, out);
}

void stb_jpeg(const std::string& name, int w, int h, int channels, int quality) {
  std::string out;
  stbi_write_jpg_to_func(append, &out, w, h, channels, pattern(w, h, channels).data(), quality);
  save(name, out);
}

void put_u32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s += char((v >> shift) & 0xFF);
}

void chunk(std::string& png, const char* type, const std::string& data) {
  put_u32(png, uint32_t(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put_u32(png, uint32_t(crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()))));
}

// A PNG written chunk by chunk, for layouts stb_image_write does not make. `raw` is the
// filtered scanline stream (filter byte 0 before every row).
std::string manual_png(int w, int h, int depth, int colour, int interlace, const std::string& raw,
                       const std::string& plte = "", const std::string& trns = "") {
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_u32(ihdr, uint32_t(w));
  put_u32(ihdr, uint32_t(h));
  ihdr += char(depth);
  ihdr += char(colour);
  ihdr += '\0';  // deflate
  ihdr += '\0';  // adaptive filtering
  ihdr += char(interlace);
  chunk(png, "IHDR", ihdr);
  if (!plte.empty()) chunk(png, "PLTE", plte);
  if (!trns.empty()) chunk(png, "tRNS", trns);
  uLongf size = compressBound(uLong(raw.size()));
  std::string z(size, '\0');
  compress2(reinterpret_cast<Bytef*>(&z[0]), &size, reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), 9);
  z.resize(size);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", "");
  return png;
}

// Scanlines of a w x h image with `bytes_per_row(width)` bytes a row, each byte from `value`.
template <typename F>
std::string rows(int w, int h, int row_bytes, F value) {
  std::string raw;
  for (int y = 0; y < h; ++y) {
    raw += '\0';
    for (int i = 0; i < row_bytes; ++i) raw += char(value(i, y));
  }
  return raw;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  out_dir = argv[1];
  stb_png("grey_5x3.png", 5, 3, 1);
  stb_png("grey_alpha_4x4.png", 4, 4, 2);
  stb_png("rgb_7x5.png", 7, 5, 3);
  stb_png("rgba_6x6.png", 6, 6, 4);
  stb_jpeg("rgb_q50_17x9.jpg", 17, 9, 3, 50);   // 4:2:0 subsampled, odd size
  stb_jpeg("rgb_q95_8x8.jpg", 8, 8, 3, 95);     // 4:4:4
  stb_jpeg("grey_q80_9x9.jpg", 9, 9, 1, 80);

  // Palette (colour type 3) with transparency, 4 bits per index.
  const std::string plte = std::string("\xff\x00\x00\x00\xff\x00\x00\x00\xff\x80\x80\x80", 12);
  save("palette4_trns_6x4.png",
       manual_png(6, 4, 4, 3, 0, rows(6, 4, 3, [](int i, int y) { return ((i + y) % 4) * 0x11; }), plte,
                  std::string("\xff\x80", 2)));
  // 1-bit grey.
  save("grey1_12x3.png", manual_png(12, 3, 1, 0, 0, rows(12, 3, 2, [](int i, int y) { return 0xA5 ^ (y * 0x3C); })));
  // 16-bit RGBA.
  save("rgba16_3x2.png", manual_png(3, 2, 16, 6, 0, rows(3, 2, 24, [](int i, int y) { return i * 10 + y; })));
  // Adam7-interlaced 8-bit RGB, 9 x 9: every pass is non-empty.
  {
    const int w = 9, h = 9;
    const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    std::string raw;
    for (int p = 0; p < 7; ++p) {
      const int pw = (w - x0[p] + dx[p] - 1) / dx[p], ph = (h - y0[p] + dy[p] - 1) / dy[p];
      if (pw == 0 || ph == 0) continue;
      raw += rows(pw, ph, pw * 3, [p](int i, int y) { return (i * 29 + y * 7 + p * 50) & 0xFF; });
    }
    save("rgb_adam7_9x9.png", manual_png(w, h, 8, 2, 1, raw));
  }
  return 0;
}
