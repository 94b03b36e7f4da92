#include "data/loader.h"
#include "data_test_support.h"

#include <atomic>

namespace ffr::data {
namespace {

using testing::expect_input_error;
using testing::TempDir;
using testing::write_file;

// n 4x4 PNGs; image i is solid (i, 255 - i, 7) so every pixel says which file it came from.
// Sample i has y = i % 2, b = (i / 2) % 2.
Manifest numbered_manifest(const TempDir& dir, int n, int missing = -1) {
  std::string csv = "path,split,y,b,source\n";
  for (int i = 0; i < n; ++i) {
    const std::string name = "img" + std::to_string(i) + ".png";
    if (i != missing) write_png(dir / name, testing::solid_image(4, 4, uint8_t(i), uint8_t(255 - i), 7));
    csv += name + ",train," + std::to_string(i % 2) + "," + std::to_string((i / 2) % 2) + "," +
           (i % 3 == 0 ? "synthetic" : "real") + "\n";
  }
  write_file(dir / "m.csv", csv);
  write_file(dir / "m.json", testing::two_by_two_json());
  return read_manifest(dir / "m.csv");
}

IndexList all_of(const Manifest& m) {
  IndexList v;
  for (size_t i = 0; i < m.samples.size(); ++i) v.push_back(int64_t(i));
  return v;
}

TEST(DataLoader, ReturnsTheKnownPixelsAndLabels) {
  TempDir dir;
  RgbImage image(2, 2);
  const uint8_t px[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  for (int i = 0; i < 4; ++i) std::copy(px[i], px[i] + 3, image.pixels.data() + 3 * i);
  write_png(dir / "known.png", image);
  write_file(dir / "m.csv", "path,split,y,b,source\nknown.png,test,1,0,synthetic\n");
  write_file(dir / "m.json", testing::two_by_two_json());
  const Manifest m = read_manifest(dir / "m.csv");

  LoaderConfig config;
  config.image_size = 2;
  config.workers = 1;
  config.normalization = Normalization::imagenet();
  Loader loader(m, std::make_shared<SequentialSampler>(all_of(m), 4), config);
  const HostBatch* batch = loader.next();
  ASSERT_NE(batch, nullptr);
  ASSERT_EQ(batch->size, 1);
  const Normalization n = Normalization::imagenet();
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(batch->images[c * 4 + i], (px[i][c] / 255.f - n.mean[c]) / n.std[c], 1e-5f)
          << "channel " << c << " pixel " << i;
    }
  EXPECT_EQ(batch->y[0], 1);
  EXPECT_EQ(batch->b[0], 0);
  EXPECT_EQ(batch->source[0], 1);
  EXPECT_EQ(batch->group[0], 2);              // (1, 0) is the third declared group
  EXPECT_EQ(batch->group_with_source[0], 5);  // 2 * 2 + synthetic
  EXPECT_TRUE(batch->last_in_epoch);
  EXPECT_EQ(loader.next(), nullptr);
}

// Every batch of a loader as (manifest index, red value of the first pixel, label) triples.
std::vector<std::vector<std::array<float, 3>>> drain(Loader& loader) {
  std::vector<std::vector<std::array<float, 3>>> batches;
  const size_t plane = size_t(loader.config().image_size) * loader.config().image_size;
  while (const HostBatch* b = loader.next()) {
    std::vector<std::array<float, 3>> rows;
    for (int64_t j = 0; j < b->size; ++j) rows.push_back({float(b->index[j]), b->images[size_t(j) * 3 * plane], float(b->y[j])});
    batches.push_back(rows);
  }
  return batches;
}

TEST(DataLoader, BatchesDoNotDependOnWorkersOrRingSize) {
  TempDir dir;
  const Manifest m = numbered_manifest(dir, 45);
  auto sampler = std::make_shared<ShuffledSampler>(all_of(m), 8, 5);
  LoaderConfig one;
  one.image_size = 6;  // resized: exercises the resize path too
  one.workers = 1;
  one.prefetch_batches = 1;
  one.normalization = Normalization::identity();
  LoaderConfig many = one;
  many.workers = 3;
  many.prefetch_batches = 5;
  Loader a(m, sampler, one, {0, 0}, /*end_epoch=*/3);
  Loader b(m, sampler, many, {0, 0}, 3);
  const auto from_a = drain(a), from_b = drain(b);
  ASSERT_EQ(from_a.size(), 18u);  // 3 epochs x 6 batches
  EXPECT_EQ(from_a, from_b);
  // Contents are the sampler's order, and pixels come from the right file.
  for (int64_t k = 0; k < 6; ++k) {
    const IndexList expected = sampler->batch(sampler->epoch_order(1), k);
    for (size_t j = 0; j < expected.size(); ++j) {
      const auto& row = from_a[size_t(6 + k)][j];
      EXPECT_EQ(int64_t(row[0]), expected[j]);
      EXPECT_NEAR(row[1], float(expected[j]) / 255.f, 1e-6f);
      EXPECT_EQ(int64_t(row[2]), expected[j] % 2);
    }
  }
}

TEST(DataLoader, ResumesAtAPosition) {
  TempDir dir;
  const Manifest m = numbered_manifest(dir, 20);
  auto sampler = std::make_shared<ShuffledSampler>(all_of(m), 6, 1);  // 4 batches per epoch
  LoaderConfig config;
  config.image_size = 4;
  Loader loader(m, sampler, config, {1, 2}, 2);
  const HostBatch* first = loader.next();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->position, (SamplerPosition{1, 2}));
  const IndexList expected = sampler->batch(sampler->epoch_order(1), 2);
  EXPECT_EQ(IndexList(first->index, first->index + first->size), expected);
  const HostBatch* second = loader.next();
  EXPECT_EQ(second->position, (SamplerPosition{1, 3}));
  EXPECT_TRUE(second->last_in_epoch);
  EXPECT_EQ(second->size, 2);
  EXPECT_EQ(loader.next(), nullptr);
}

TEST(DataLoader, WorkerErrorsReachTheConsumerNamingFileAndLine) {
  TempDir dir;
  const Manifest m = numbered_manifest(dir, 12, /*missing=*/9);
  LoaderConfig config;
  config.image_size = 4;
  config.workers = 2;
  Loader loader(m, std::make_shared<SequentialSampler>(all_of(m), 4), config);
  ASSERT_NE(loader.next(), nullptr);  // samples 0-3
  ASSERT_NE(loader.next(), nullptr);  // samples 4-7
  // Sample 9 is on CSV line 11 (header + 10).
  expect_input_error([&] { loader.next(); }, {"img9.png", "m.csv:11", "not found"});
  expect_input_error([&] { loader.next(); }, {"img9.png"});  // cannot skip past a broken batch
}

TEST(DataLoader, RingBoundsMemoryAndShutdownIsClean) {
  TempDir dir;
  const Manifest m = numbered_manifest(dir, 16);
  std::atomic<int> blocks{0};
  LoaderConfig config;
  config.image_size = 4;
  config.workers = 3;
  config.prefetch_batches = 3;
  config.allocator = [&](size_t bytes) {
    ++blocks;
    return std::shared_ptr<void>(::operator new(bytes), [](void* p) { ::operator delete(p); });
  };
  std::atomic<int> refills{0};
  config.before_refill = [&](int) { ++refills; };
  {
    // Endless epochs; the consumer takes two batches and walks away with work in flight.
    Loader loader(m, std::make_shared<ShuffledSampler>(all_of(m), 4, 0), config, {0, 0}, Loader::kEndless);
    EXPECT_EQ(loader.total_batches(), INT64_MAX);
    ASSERT_NE(loader.next(), nullptr);
    ASSERT_NE(loader.next(), nullptr);
  }
  EXPECT_EQ(blocks.load(), 6);  // images + labels per ring buffer, never more
  // Back-pressure: with 2 batches consumed (1 handed back) at most 1 + 3 batches were started.
  EXPECT_LE(refills.load(), 4);
}

}  // namespace
}  // namespace ffr::data
