#include "data/device_loader.h"
#include "data_test_support.h"

namespace ffr::data {
namespace {

using testing::TempDir;
using testing::write_file;

Manifest colour_manifest(const TempDir& dir, int n) {
  std::string csv = "path,split,y,b,source\n";
  for (int i = 0; i < n; ++i) {
    const std::string name = "c" + std::to_string(i) + ".png";
    write_png(dir / name, testing::solid_image(3, 3, uint8_t(3 * i), uint8_t(100 + i), uint8_t(200 - i)));
    csv += name + ",train," + std::to_string(i % 2) + "," + std::to_string((i / 2) % 2) + ",real\n";
  }
  write_file(dir / "m.csv", csv);
  write_file(dir / "m.json", testing::two_by_two_json());
  return read_manifest(dir / "m.csv");
}

// The device loader's batches equal the host loader's, on `device`, over several epochs with a
// small ring (so buffers are recycled while copies may still be in flight on a GPU).
void expect_same_as_host(Device device) {
  TempDir dir;
  const Manifest m = colour_manifest(dir, 23);
  IndexList all(m.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  auto sampler = std::make_shared<ShuffledSampler>(all, 5, 2);
  LoaderConfig config;
  config.image_size = 3;
  config.workers = 2;
  config.prefetch_batches = 2;
  Loader host(m, sampler, config, {0, 0}, 4);
  DeviceLoader on_device(m, sampler, config, device, {0, 0}, 4);
  int batches = 0;
  while (const HostBatch* h = host.next()) {
    const std::optional<DeviceBatch> d = on_device.next();
    ASSERT_TRUE(d.has_value());
    ASSERT_EQ(d->size, h->size);
    EXPECT_EQ(d->position, h->position);
    EXPECT_EQ(d->images.device(), device);
    EXPECT_EQ(d->images.shape(), (Shape{h->size, 3, 3, 3}));
    const std::vector<float> pixels = d->images.cpu().to_vector<float>();
    ASSERT_EQ(pixels.size(), size_t(h->size) * 27);
    for (size_t i = 0; i < pixels.size(); ++i) ASSERT_EQ(pixels[i], h->images[i]) << "batch " << batches;
    const std::vector<int64_t> y = d->y.cpu().to_vector<int64_t>(), group = d->group.cpu().to_vector<int64_t>();
    const std::vector<int64_t> index = d->index.to_vector<int64_t>();
    for (int64_t j = 0; j < h->size; ++j) {
      EXPECT_EQ(y[size_t(j)], h->y[j]);
      EXPECT_EQ(group[size_t(j)], h->group[j]);
      EXPECT_EQ(index[size_t(j)], h->index[j]);
    }
    ++batches;
  }
  EXPECT_EQ(batches, 4 * 5);
  EXPECT_FALSE(on_device.next().has_value());
}

TEST(DataDeviceLoader, CpuBatchesMatchTheHostLoader) { expect_same_as_host(Device::cpu()); }

TEST(DataDeviceLoader, CudaBatchesMatchTheHostLoader) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU: " << device_report();
  expect_same_as_host(Device::cuda(0));
}

}  // namespace
}  // namespace ffr::data
