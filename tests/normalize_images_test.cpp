#include "kernels/normalize_images.h"
#include "data/loader.h"
#include "data/preprocess.h"
#include "data_test_support.h"
#include "engine/device.h"
#include "engine/rng.h"
#include "engine/tensor.h"

#include <cstring>
#include <vector>

namespace ffr::data {
namespace {

using testing::TempDir;
using testing::write_file;

std::vector<uint8_t> random_bytes(size_t n, Rng& rng) {
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = uint8_t(rng.next_u64() & 0xFF);
  return out;
}

// (p / 255 - mean) / std per channel, interleaved in, planes out.
TEST(NormalizeImages, CpuReferenceMatchesTheFormula) {
  Rng rng(80);
  const int64_t images = 3, plane = 7 * 5;
  const Normalization norm = Normalization::imagenet();
  const std::vector<uint8_t> hwc = random_bytes(size_t(images * plane * 3), rng);
  std::vector<float> out(size_t(images * 3 * plane));
  normalize_images_cpu(hwc.data(), out.data(), images, plane, pixel_affine(norm));
  for (int64_t n = 0; n < images; ++n) {
    for (int c = 0; c < 3; ++c) {
      for (int64_t i = 0; i < plane; ++i) {
        const double p = hwc[size_t((n * plane + i) * 3 + c)];
        const double expected = (p / 255.0 - norm.mean[c]) / norm.std[c];
        EXPECT_NEAR(out[size_t((n * 3 + c) * plane + i)], expected, 2e-6) << n << " " << c << " " << i;
      }
    }
  }
}

// The CPU preprocessing is the resize then this reference: the two halves the CUDA loader uses
// give the same floats bit for bit.
TEST(NormalizeImages, ResizeThenNormalizeEqualsPreprocess) {
  Rng rng(81);
  RgbImage image(9, 6);
  image.pixels = random_bytes(image.pixels.size(), rng);
  for (int size : {4, 6, 9, 13}) {
    std::vector<float> direct(size_t(3 * size * size));
    preprocess_into(image, size, Normalization::imagenet(), direct.data());
    std::vector<uint8_t> pixels(size_t(3 * size * size));
    resize_into(image, size, pixels.data());
    std::vector<float> halves(direct.size());
    normalize_images_cpu(pixels.data(), halves.data(), 1, int64_t(size) * size, pixel_affine(Normalization::imagenet()));
    EXPECT_EQ(std::memcmp(direct.data(), halves.data(), direct.size() * sizeof(float)), 0) << "size " << size;
  }
}

// The loader's uint8 mode (what the CUDA loader ships): its pixels, normalised, equal the float
// mode's images bit for bit, resized images included.
TEST(NormalizeImages, LoaderUint8PixelsNormaliseToTheFloatBatches) {
  TempDir dir;
  Rng rng(82);
  std::string csv = "path,split,y,b,source\n";
  for (int i = 0; i < 11; ++i) {
    RgbImage image(5 + i % 3, 4 + i % 2);
    image.pixels = random_bytes(image.pixels.size(), rng);
    const std::string name = "r" + std::to_string(i) + ".png";
    write_png(dir / name, image);
    csv += name + ",train," + std::to_string(i % 2) + "," + std::to_string((i / 2) % 2) + ",real\n";
  }
  write_file(dir / "m.csv", csv);
  write_file(dir / "m.json", testing::two_by_two_json());
  const Manifest m = read_manifest(dir / "m.csv");
  IndexList all(m.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  auto sampler = std::make_shared<SequentialSampler>(all, 4);
  LoaderConfig config;
  config.image_size = 6;
  config.prefetch_batches = 2;
  Loader floats(m, sampler, config);
  config.uint8_pixels = true;
  Loader bytes(m, sampler, config);
  const PixelAffine affine = pixel_affine(config.normalization);
  int batches = 0;
  while (const HostBatch* f = floats.next()) {
    const HostBatch* b = bytes.next();
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->images, nullptr);
    ASSERT_NE(b->pixels, nullptr);
    ASSERT_EQ(b->size, f->size);
    const size_t n = size_t(f->size) * 3 * 36;
    std::vector<float> normalised(n);
    normalize_images_cpu(b->pixels, normalised.data(), f->size, 36, affine);
    EXPECT_EQ(std::memcmp(normalised.data(), f->images, n * sizeof(float)), 0) << "batch " << batches;
    for (int64_t j = 0; j < f->size; ++j) EXPECT_EQ(b->y[j], f->y[j]);
    ++batches;
  }
  EXPECT_EQ(batches, 3);
  EXPECT_EQ(bytes.next(), nullptr);
}

TEST(NormalizeImagesCuda, MatchesCpuBitForBit) {
#ifndef FFR_WITH_CUDA  // the raw CUDA launcher exists only in CUDA builds
  GTEST_SKIP() << "built without the CUDA backend";
#else
  if (!cuda_available()) GTEST_SKIP() << "no GPU: " << device_report();
  Rng rng(83);
  for (const auto& [images, plane] : std::vector<std::pair<int64_t, int64_t>>{{5, 224 * 224}, {3, 37}, {1, 1}}) {
    SCOPED_TRACE(std::to_string(images) + " x " + std::to_string(plane));
    const size_t bytes = size_t(images * plane * 3);
    std::vector<uint8_t> hwc = random_bytes((bytes + 7) / 8 * 8, rng);
    const Tensor host = Tensor::from_blob(hwc.data(), {int64_t(hwc.size() / 8)}, DType::Int64, Device::cpu());
    const Tensor pixels = host.cuda();
    Tensor out = Tensor::empty({images * 3 * plane}, DType::Float32, Device::cuda(0));
    const PixelAffine affine = pixel_affine(Normalization::imagenet());
    normalize_images_cuda(static_cast<const uint8_t*>(pixels.raw_data()), out.data<float>(), images, plane, affine);
    std::vector<float> expected(size_t(images * 3 * plane));
    normalize_images_cpu(hwc.data(), expected.data(), images, plane, affine);
    const std::vector<float> got = out.cpu().to_vector<float>();
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0);
  }
#endif
}

}  // namespace
}  // namespace ffr::data
