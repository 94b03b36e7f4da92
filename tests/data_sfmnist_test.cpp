#include "data/groups.h"
#include "data/manifest.h"
#include "data/protocol.h"
#include "data/sfmnist_build.h"
#include "data/sfmnist_plan.h"
#include "data/synthetic_sets.h"
#include "data_test_support.h"

#include <set>

namespace ffr::data {
namespace {

using testing::expect_input_error;
using testing::folder_contents;
using testing::TempDir;

// Small enough to build in about a second: 40 real per class, 40 val/test per class.
SpuriousFashionMnistConfig tiny(const std::filesystem::path& out, uint64_t seed) {
  SpuriousFashionMnistConfig c;
  c.out = out;
  c.seed = seed;
  c.real_per_class = 40;
  c.synthetic_source_per_class = 20;
  c.heldout_source_per_class = 4;
  c.synthetic_eval_per_group = 2;
  c.eval_per_class = 40;
  c.threads = 2;
  return c;
}

class DataSpuriousFashionMnist : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
};

TEST_F(DataSpuriousFashionMnist, SameSeedWritesByteIdenticalFiles) {
  TempDir dir;
  auto c1 = tiny(dir / "a", 17);
  c1.threads = 1;
  const BuildSummary s = build_spurious_fashion_mnist(c1);
  build_spurious_fashion_mnist(tiny(dir / "b", 17));  // 2 threads: scheduling must not matter
  build_spurious_fashion_mnist(tiny(dir / "c", 18));
  const auto a = folder_contents(dir / "a"), b = folder_contents(dir / "b"), c = folder_contents(dir / "c");
  ASSERT_EQ(int64_t(a.size()), s.images + 3);  // + manifest.csv, manifest.json, build.json
  EXPECT_TRUE(a == b) << "same seed, different thread count: files differ";
  ASSERT_EQ(a.size(), c.size());
  size_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i) differing += a[i].second != c[i].second;
  EXPECT_GT(differing, a.size() / 2) << "another seed should give other images";
}

TEST_F(DataSpuriousFashionMnist, SplitsFollowTheDesign) {
  TempDir dir;
  build_spurious_fashion_mnist(tiny(dir / "sf", 3));
  const Manifest m = read_manifest(dir / "sf" / "manifest.csv");
  const GroupIndex groups(m.info);
  EXPECT_EQ(m.info.class_names, (std::vector<std::string>{"T-shirt/top", "Pullover", "Sneaker", "Bag"}));
  EXPECT_EQ(m.info.num_biases(), 4);
  EXPECT_EQ(m.info.image_size, 32);

  const GroupCounts train = count_groups(m, select_samples(m, Split::Train, Source::Real), groups);
  const GroupCounts val = count_groups(m, select_samples(m, Split::Val, Source::Real), groups);
  const GroupCounts test = count_groups(m, select_samples(m, Split::Test, Source::Real), groups);
  for (int g = 0; g < groups.num_groups(); ++g) {
    const auto [y, b] = groups.pair(g);
    EXPECT_EQ(train[size_t(g)], y == b ? 36 : (b == (y == 0 ? 1 : 0) ? 2 : 1)) << "ratio 0.9 of 40, rest 2/1/1";
    EXPECT_GE(val[size_t(g)], 10);
    EXPECT_EQ(test[size_t(g)], 10) << "test is balanced";
  }
  // Enough synthetic images for every mode at r = 0.999.
  for (Augmentation a : {Augmentation::USB, Augmentation::ASB, Augmentation::FFR}) {
    EXPECT_NO_THROW(make_experiment_splits(m, {0.999, a, SyntheticDistribution::Balanced, 0}));
  }
  EXPECT_NO_THROW(make_experiment_splits(m, {0.999, Augmentation::FFR, SyntheticDistribution::Biased, 0}));
  EXPECT_NO_THROW(make_experiment_splits(m, {0.9, Augmentation::FFR, SyntheticDistribution::BiasAgnostic, 0}));

  // Issue 19: the bias-agnostic pool is its own images (class-only prompts, own folder), with
  // backgrounds from the generator's prior (0.7 on the class's majority), not the bias pools'
  // balanced draw; the bias-aware pool is balanced over backgrounds.
  std::set<std::string> aware_paths, agnostic_paths;
  GroupCounts agnostic(size_t(groups.num_groups()), 0);
  for (const Sample& s : m.samples) {
    if (s.source != Source::Synthetic || s.split != Split::Train) continue;
    if (s.prompt_kind == PromptKind::Agnostic) {
      agnostic_paths.insert(s.path);
      ++agnostic[size_t(groups.group(s.y, s.b))];
      EXPECT_EQ(s.prompt, "a " + m.info.class_names[size_t(s.y)]) << s.path;
      EXPECT_NE(s.path.find("train/synthetic-agnostic/"), std::string::npos) << s.path;
    } else {
      aware_paths.insert(s.path);
      EXPECT_NE(s.prompt.find(" background"), std::string::npos) << s.path;
    }
  }
  ASSERT_FALSE(agnostic_paths.empty());
  for (const std::string& p : agnostic_paths) EXPECT_EQ(aware_paths.count(p), 0u) << p;
  for (int y = 0; y < 4; ++y) {
    int64_t class_total = 0;
    for (int b = 0; b < 4; ++b) class_total += agnostic[size_t(groups.group(y, b))];
    const double majority_share = double(agnostic[size_t(groups.group(y, y))]) / double(class_total);
    EXPECT_NEAR(majority_share, 0.7, 0.15) << "class " << y;
  }
  // Held-out synthetic images stay bias-aware.
  for (const Sample& s : m.samples) {
    if (s.split != Split::Train) EXPECT_EQ(s.prompt_kind, PromptKind::Aware) << s.path;
  }

  // Real and synthetic come from disjoint Fashion-MNIST images.
  std::set<std::string> real_ids, synthetic_ids;
  for (const Sample& s : m.samples) (s.source == Source::Real ? real_ids : synthetic_ids).insert(s.orig_id);
  for (const std::string& id : synthetic_ids) EXPECT_EQ(real_ids.count(id), 0u) << id;
  EXPECT_EQ(read_image(m.image_path(0)).width, 32);
}

TEST_F(DataSpuriousFashionMnist, NothingHalfWrittenOnFailure) {
  TempDir dir;
  // An existing folder is refused (and left alone) without --force.
  std::filesystem::create_directories(dir / "taken");
  testing::write_file(dir / "taken" / "keep.txt", "mine");
  expect_input_error([&] { build_spurious_fashion_mnist(tiny(dir / "taken", 1)); }, {"taken", "already exists"});
  EXPECT_EQ(testing::read_file(dir / "taken" / "keep.txt"), "mine");
  // A failure after the staging folder exists (no Fashion-MNIST there) leaves no trace.
  auto broken = tiny(dir / "out", 1);
  broken.fashion_mnist_dir = dir / "no-such-folder";
  expect_input_error([&] { build_spurious_fashion_mnist(broken); }, {"no-such-folder", "train-images"});
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, (std::vector<std::string>{"taken"}));
  // Bad configs name the flag.
  auto bad = tiny(dir / "x", 1);
  bad.classes = {0, 0};
  expect_input_error([&] { build_spurious_fashion_mnist(bad); }, {"--classes"});
  bad = tiny(dir / "x", 1);
  bad.severity = 6;
  expect_input_error([&] { build_spurious_fashion_mnist(bad); }, {"--severity"});
}

// --force replaces only a folder this builder wrote (its build.json), holding nothing else of
// the user's: a folder of other files is refused, named, and left alone.
TEST_F(DataSpuriousFashionMnist, ForceReplacesOnlyOurOwnFolder) {
  TempDir dir;
  std::filesystem::create_directories(dir / "photos");
  testing::write_file(dir / "photos" / "holiday.png", "precious");
  auto c = tiny(dir / "photos", 1);
  c.replace_existing = true;
  expect_input_error([&] { build_spurious_fashion_mnist(c); }, {"photos", "build.json", "--force"});
  EXPECT_EQ(testing::read_file(dir / "photos" / "holiday.png"), "precious");

  // A file of the user's inside a data set we built is refused too, naming it.
  auto ours = tiny(dir / "sf", 1);
  build_spurious_fashion_mnist(ours);
  testing::write_file(dir / "sf" / "notes.txt", "mine");
  ours.replace_existing = true;
  ours.seed = 2;
  expect_input_error([&] { build_spurious_fashion_mnist(ours); }, {"notes.txt"});
  EXPECT_EQ(testing::read_file(dir / "sf" / "notes.txt"), "mine");
  // Our own folder is replaced, and so is an empty one.
  std::filesystem::remove(dir / "sf" / "notes.txt");
  EXPECT_NO_THROW(build_spurious_fashion_mnist(ours));
  EXPECT_NE(testing::read_file(dir / "sf" / "build.json").find("\"seed\": 2"), std::string::npos);
  std::filesystem::create_directories(dir / "empty");
  auto empty = tiny(dir / "empty", 1);
  empty.replace_existing = true;
  EXPECT_NO_THROW(build_spurious_fashion_mnist(empty));
  // A plain file is never replaced.
  testing::write_file(dir / "file", "x");
  auto file = tiny(dir / "file", 1);
  file.replace_existing = true;
  expect_input_error([&] { build_spurious_fashion_mnist(file); }, {"file", "not a folder"});
}

TEST(DataSpuriousFashionMnistPlan, BackgroundCountsKeepTheRatioAndFloors) {
  EXPECT_EQ(sfmnist::biased_background_counts(2000, 1, 0.9, 1), (std::vector<int64_t>{67, 1800, 67, 66}));
  EXPECT_EQ(sfmnist::biased_background_counts(500, 0, 0.99, 10), (std::vector<int64_t>{470, 10, 10, 10}));
}

}  // namespace
}  // namespace ffr::data
