#include "data/image.h"
#include "data/preprocess.h"
#include "data_test_support.h"
#include "tests/testing.h"

// The test writes grey, RGBA and JPEG files with stb (internal linkage, like the library's copy).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

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

// The fuzzer's seeds and regression inputs (fuzz/corpus/image, fuzz/README.md's findings).
std::filesystem::path image_corpus() { return std::filesystem::path(ffr::testing::source_dir()) / "fuzz" / "corpus" / "image"; }

// Each regression input that must be refused, and what its InputError must say.
const std::map<std::string, std::vector<std::string>>& refused_regressions() {
  static const std::map<std::string, std::vector<std::string>> cases = {
      {"regress_jpeg_16000x16000_in_728_bytes.jpg", {"JPEG declares 16000x16000 pixels", "728 bytes"}},
      {"regress_jpeg_dht_over_256_codes.jpg", {"corrupt JPEG", "Huffman table declares 2536 codes", "at most 256"}},
      {"regress_jpeg_undefined_huffman_table.jpg", {"corrupt JPEG", "AC Huffman table 0, never defined"}},
      {"regress_jpeg_undefined_quant_table.jpg", {"corrupt JPEG", "quantisation table 1, never defined"}},
      {"regress_jpeg_no_scan.jpg", {"corrupt JPEG", "before any scan"}},
      {"regress_jpeg_component_in_no_scan.jpg", {"corrupt JPEG", "no scan codes component 2 of its 3"}},
      {"regress_png_16000x16000_in_99_bytes.png", {"PNG declares 16000x16000 pixels", "99 bytes"}},
      {"regress_png_idat_length_past_end.png", {"corrupt PNG", "chunk 'IDAT'", "declares 1112080384 bytes"}},
      {"regress_png_short_plte_without_crc.png", {"cannot decode image (corrupt data"}},
  };
  return cases;
}

// Each regression input that must decode (the finding was in a later stage or is harmless), and its size.
const std::map<std::string, std::pair<int, int>>& decoded_regressions() {
  static const std::map<std::string, std::pair<int, int>> cases = {
      {"regress_jpeg_41x9_resize_assert.jpg", {41, 9}},
      {"regress_jpeg_bits_after_marker.jpg", {608, 9}},
      {"regress_png_empty_first_idat.png", {7, 5}},
      {"regress_png_palette_index_past_plte.png", {6, 4}},
  };
  return cases;
}

TEST(DataImage, FuzzRegressionInputsAreRefusedWithTheirReason) {
  for (const auto& [file, parts] : refused_regressions()) {
    SCOPED_TRACE(file);
    std::vector<std::string> expected = parts;
    expected.push_back(file);  // the error names the file
    expect_input_error([&] { read_image(image_corpus() / file); }, expected);
  }
}

TEST(DataImage, FuzzRegressionInputsThatAreValidStillDecode) {
  for (const auto& [file, size] : decoded_regressions()) {
    SCOPED_TRACE(file);
    const RgbImage image = read_image(image_corpus() / file);
    EXPECT_EQ(image.width, size.first);
    EXPECT_EQ(image.height, size.second);
    // Decoded again, the pixels are the same (stb's buffers start zeroed, so nothing comes
    // from stale heap memory).
    EXPECT_EQ(read_image(image_corpus() / file).pixels, image.pixels);
  }
}

// A 4-bit palette PNG with a 4-entry PLTE whose pixels use indices past it: those are black, as
// libpng gives them (stb alone read its uninitialised stack there).
TEST(DataImage, PalettePixelsPastThePaletteAreBlack) {
  const RgbImage image = read_image(image_corpus() / "regress_png_palette_index_past_plte.png");
  const std::set<std::vector<uint8_t>> palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {128, 128, 128}};
  int black = 0;
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    const std::vector<uint8_t> rgb(image.pixels.begin() + long(i), image.pixels.begin() + long(i) + 3);
    if (rgb == std::vector<uint8_t>{0, 0, 0}) {
      ++black;
    } else {
      EXPECT_TRUE(palette.count(rgb)) << "pixel " << i / 3 << " is not a palette colour";
    }
  }
  EXPECT_GT(black, 0);
}

// Every regress_* file is in one of the two lists above, so a new finding needs a test here.
TEST(DataImage, EveryFuzzRegressionInputIsListed) {
  std::set<std::string> unlisted;
  for (const auto& entry : std::filesystem::directory_iterator(image_corpus())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("regress_", 0) == 0 && !refused_regressions().count(name) && !decoded_regressions().count(name)) {
      unlisted.insert(name);
    }
  }
  EXPECT_TRUE(unlisted.empty()) << "regress_* inputs without a test, e.g. " << (unlisted.empty() ? "" : *unlisted.begin());
}

// The seed JPEGs (cjpeg and stb_image_write output) decode, including progressive, multi-scan
// and restart-marker files: the structure checks before stb must never refuse a valid JPEG.
TEST(DataImage, ProgressiveMultiScanAndRestartJpegsDecode) {
  // The same 17 x 9 picture and quantisation (cjpeg -quality 50), coded as 10 progressive scans
  // with restart markers and as 3 baseline scans (one per component) with restart markers: the
  // same coefficients, so the same pixels.
  const RgbImage progressive = read_image(image_corpus() / "rgb_progressive_restart_17x9.jpg");
  const RgbImage three_scans = read_image(image_corpus() / "rgb_3scans_restart_17x9.jpg");
  ASSERT_EQ(progressive.width, 17);
  ASSERT_EQ(progressive.height, 9);
  EXPECT_EQ(progressive.pixels, three_scans.pixels);
  const RgbImage grey = read_image(image_corpus() / "grey_progressive_17x9.jpg");
  EXPECT_EQ(grey.width, 17);
  for (size_t i = 0; i < grey.pixels.size(); i += 3) {
    ASSERT_EQ(grey.pixels[i], grey.pixels[i + 1]);
    ASSERT_EQ(grey.pixels[i], grey.pixels[i + 2]);
  }
  for (const char* seed : {"grey_q80_9x9.jpg", "rgb_q50_17x9.jpg", "rgb_q95_8x8.jpg"}) {
    SCOPED_TRACE(seed);
    EXPECT_GT(read_image(image_corpus() / seed).width, 0);
  }
}

// Cut-down forms of a valid JPEG that stb would decode from tables or planes nothing wrote.
TEST(DataImage, JpegsUsingUndefinedTablesOrSkippingComponentsAreRefused) {
  std::vector<uint8_t> noise(24 * 16 * 3);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = uint8_t((i * 7919) % 251);
  const std::string jpg = encode(24, 16, 3, noise, true);
  ASSERT_EQ(decode_image(jpg, "ok.jpg").width, 24);
  // stb_image_write: SOI, APP0, DQT, SOF0, DHT, SOS, data, EOI (no 0xFF 0xC4 or 0xFF 0xDA anywhere else).
  const size_t dht = jpg.find("\xFF\xC4"), sos = jpg.find("\xFF\xDA");
  ASSERT_NE(dht, std::string::npos);
  ASSERT_NE(sos, std::string::npos);
  ASSERT_LT(dht, sos);
  // No DHT at all: the scan's Huffman tables are undefined.
  expect_input_error([&] { decode_image(jpg.substr(0, dht) + jpg.substr(sos), "no_dht.jpg"); },
                     {"no_dht.jpg", "corrupt JPEG", "Huffman table 0, never defined"});
  // Only the scan header and data cut out: the end-of-image marker follows the tables.
  const std::string no_scan = jpg.substr(0, sos) + "\xFF\xD9";
  expect_input_error([&] { decode_image(no_scan, "no_scan.jpg"); }, {"no_scan.jpg", "before any scan"});
  // The scan lists only its first component (header length 8, one component): a baseline frame
  // with components no scan codes.
  std::string one_component = jpg;
  const size_t header = sos + 2;
  const uint8_t ns = uint8_t(jpg[header + 2]);
  ASSERT_EQ(ns, 3);
  one_component.replace(header, 3, std::string("\x00\x08\x01", 3));
  one_component.erase(header + 5, 4);  // the other two components' (id, tables)
  expect_input_error([&] { decode_image(one_component, "one.jpg"); }, {"one.jpg", "no scan codes component"});
}

}  // namespace
}  // namespace ffr::data
