// import spuco-animals on a fake copy of the spuco package's layout:
// spuco_birds/<split>/{landbirds,waterbirds}/{land,water}/, spuco_dogs/<split>/{small_dogs,big_dogs}/{indoor,outdoor}/.
#include "data/import/spuco_animals.h"

#include "data_import_test_support.h"

#include <gtest/gtest.h>

namespace ffr::data {
namespace {

using testing::counts_of;
using testing::expect_input_error;
using testing::import_and_read_back;
using testing::TempDir;
using testing::write_image;

void write_fake_spuco(const std::filesystem::path& root) {
  const std::vector<std::tuple<std::string, std::string, std::string>> groups = {
      {"spuco_birds", "landbirds", "land"},   {"spuco_birds", "landbirds", "water"},
      {"spuco_birds", "waterbirds", "land"},  {"spuco_birds", "waterbirds", "water"},
      {"spuco_dogs", "small_dogs", "indoor"}, {"spuco_dogs", "small_dogs", "outdoor"},
      {"spuco_dogs", "big_dogs", "indoor"},   {"spuco_dogs", "big_dogs", "outdoor"}};
  for (const auto& [family, klass, background] : groups) {
    // 3 train, 2 val, 1 test images per group; SpuCo's own names are ImageNet file names.
    int k = 0;
    for (const auto& [split, n] : std::vector<std::pair<std::string, int>>{{"train", 3}, {"val", 2}, {"test", 1}}) {
      for (int i = 0; i < n; ++i) {
        write_image(root / family / split / klass / background / detail::concat("n0153", k++, "_", i, ".JPEG"));
      }
    }
  }
}

TEST(DataImportSpucoAnimals, FoldersGiveClassBackgroundAndSplit) {
  TempDir tmp;
  write_fake_spuco(tmp / "spuco");
  SpucoAnimalsImport options;
  options.root = tmp / "spuco";
  ImportCommon common;
  common.out = tmp / "spuco.csv";
  const Manifest m = import_and_read_back([&] { return import_spuco_animals(options, common); }, common.out);
  EXPECT_EQ(m.info.class_names, (std::vector<std::string>{"small_dogs", "big_dogs", "landbirds", "waterbirds"}));
  EXPECT_EQ(m.info.bias_names, (std::vector<std::string>{"indoor", "outdoor", "land", "water"}));
  // The 8 groups of the paper's SpuCo Animals, no more.
  EXPECT_EQ(m.info.groups,
            (std::vector<std::pair<int, int>>{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 2}, {2, 3}, {3, 2}, {3, 3}}));
  ASSERT_EQ(m.samples.size(), 48u);
  testing::GroupCountsBySplit expected;
  for (const auto& [y, b] : m.info.groups) {
    expected[{"train", y, b}] = 3;
    expected[{"val", y, b}] = 2;
    expected[{"test", y, b}] = 1;
  }
  EXPECT_EQ(counts_of(m), expected);
}

TEST(DataImportSpucoAnimals, WithoutSplitFoldersASeededSplitAndAWarning) {
  TempDir tmp;
  for (int i = 0; i < 10; ++i) {
    write_image(tmp / "flat" / "big_dogs" / "indoor" / detail::concat(i, ".jpg"));
    write_image(tmp / "flat" / "landbirds" / "water" / detail::concat(i, ".jpg"));
  }
  SpucoAnimalsImport options;
  options.root = tmp / "flat";
  ImportCommon common;
  common.out = tmp / "flat.csv";
  const ImportResult r = import_spuco_animals(options, common);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("seeded split"), std::string::npos);
  const testing::GroupCountsBySplit expected = {{{"train", 1, 0}, 7}, {{"val", 1, 0}, 1}, {{"test", 1, 0}, 2},
                                                {{"train", 2, 3}, 7}, {{"val", 2, 3}, 1}, {{"test", 2, 3}, 2}};
  EXPECT_EQ(counts_of(r.manifest), expected);
}

TEST(DataImportSpucoAnimals, UnknownFoldersAndMixedLayoutsAreNamed) {
  TempDir tmp;
  write_fake_spuco(tmp / "spuco");
  SpucoAnimalsImport options;
  options.root = tmp / "spuco";
  ImportCommon common;
  common.out = tmp / "spuco.csv";
  write_image(tmp / "spuco" / "spuco_dogs" / "train" / "cats" / "indoor" / "x.jpg");
  expect_input_error([&] { import_spuco_animals(options, common); },
                     {"cats", "not a SpuCo Animals class", "small_dogs"});
  std::filesystem::remove_all(tmp / "spuco" / "spuco_dogs" / "train" / "cats");
  write_image(tmp / "spuco" / "spuco_dogs" / "train" / "big_dogs" / "beach" / "x.jpg");
  expect_input_error([&] { import_spuco_animals(options, common); }, {"beach", "not a SpuCo Animals background"});
  std::filesystem::remove_all(tmp / "spuco" / "spuco_dogs" / "train" / "big_dogs" / "beach");
  write_image(tmp / "spuco" / "big_dogs" / "indoor" / "y.jpg");  // no split folder above it
  expect_input_error([&] { import_spuco_animals(options, common); }, {"sit in split folders", "do not", "y.jpg"});
  EXPECT_FALSE(std::filesystem::exists(common.out));
}

}  // namespace
}  // namespace ffr::data
