// import utkface on a fake archive named as the real one ("[age]_[gender]_[race]_[date].jpg.chip.jpg"
// in UTKFace/), including the published archive's kind of malformed names.
#include "data/import/utkface.h"

#include "data_import_test_support.h"

#include <gtest/gtest.h>

namespace ffr::data {
namespace {

using testing::counts_of;
using testing::expect_input_error;
using testing::import_and_read_back;
using testing::TempDir;
using testing::write_image;

// 10 images in each (gender, young/old) group, plus two names that do not parse.
void write_fake_utkface(const std::filesystem::path& root) {
  int stamp = 0;
  for (int gender = 0; gender < 2; ++gender) {
    for (int age : {4, 52}) {
      for (int k = 0; k < 10; ++k) {
        write_image(root / "UTKFace" /
                    detail::concat(age + k, "_", gender, "_", k % 5, "_2017011617452", stamp++, ".jpg.chip.jpg"));
      }
    }
  }
  write_image(root / "UTKFace" / "39_1_20170116174525125.jpg.chip.jpg");    // no race, as in the real archive
  write_image(root / "UTKFace" / "61_3_1_20170109150557335.jpg.chip.jpg");  // gender 3
}

TEST(DataImportUtkface, GenderAgainstAgeWithASeededPerGroupSplit) {
  TempDir tmp;
  write_fake_utkface(tmp / "utk");
  UtkfaceImport options;
  options.root = tmp / "utk";
  ImportCommon common;
  common.out = tmp / "utk.csv";
  common.seed = 3;
  ImportResult r = import_utkface(options, common);
  // The unparsed names: one warning, with the count and every name.
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("2 file(s)"), std::string::npos) << r.warnings[0];
  EXPECT_NE(r.warnings[0].find("39_1_20170116174525125.jpg.chip.jpg"), std::string::npos);
  EXPECT_NE(r.warnings[0].find("61_3_1_20170109150557335.jpg.chip.jpg"), std::string::npos);

  const Manifest m = import_and_read_back([&] { return import_utkface(options, common); }, common.out);
  EXPECT_EQ(m.info.class_names, (std::vector<std::string>{"male", "female"}));
  EXPECT_EQ(m.info.bias_names, (std::vector<std::string>{"young (<20)", "old (>=20)"}));
  ASSERT_EQ(m.samples.size(), 40u);
  // Every group: 10 images -> 1 val (0.1), 2 test (0.2), 7 train.
  testing::GroupCountsBySplit expected;
  for (int y = 0; y < 2; ++y) {
    for (int b = 0; b < 2; ++b) {
      expected[{"train", y, b}] = 7;
      expected[{"val", y, b}] = 1;
      expected[{"test", y, b}] = 2;
    }
  }
  EXPECT_EQ(counts_of(m), expected);

  // The split is the seed's: the same seed gives the same one, another seed another.
  auto splits = [&](uint64_t seed) {
    ImportCommon c = common;
    c.seed = seed;
    std::vector<Split> out;
    for (const Sample& s : import_utkface(options, c).manifest.samples) out.push_back(s.split);
    return out;
  };
  EXPECT_EQ(splits(3), splits(3));
  EXPECT_NE(splits(3), splits(4));
}

TEST(DataImportUtkface, FlagsChooseAttributesAndSplitShares) {
  TempDir tmp;
  write_fake_utkface(tmp / "utk");
  UtkfaceImport options;
  options.root = tmp / "utk";
  options.target = "race";
  options.bias = "gender";
  ImportCommon common;
  common.out = tmp / "utk.csv";
  common.fractions = {0.0, 0.5};
  const Manifest m = import_and_read_back([&] { return import_utkface(options, common); }, common.out);
  EXPECT_EQ(m.info.class_names.size(), 5u);
  int test = 0;
  for (const Sample& s : m.samples) test += s.split == Split::Test;
  EXPECT_EQ(test, 20);

  options.age_split = 70;  // everyone young: only the young bias value occurs
  options.target = "gender";
  options.bias = "age";
  const Manifest young = import_utkface(options, common).manifest;
  for (const Sample& s : young.samples) EXPECT_EQ(s.b, 0);
}

TEST(DataImportUtkface, BadFlagsAndNamesAreClearErrors) {
  EXPECT_FALSE(parse_utkface_name("100_0_0_20170112213500903.jpg.chip.jpg") == std::nullopt);
  EXPECT_EQ(parse_utkface_name("100_0_0_20170112213500903.jpg.chip.jpg")->age, 100);
  EXPECT_EQ(parse_utkface_name("26_1_2_20170116.jpg")->race, 2);
  for (const char* bad : {"39_1_20170116174525125.jpg.chip.jpg", "x_0_0_1.jpg", "20_2_0_1.jpg", "20_0_5_1.jpg",
                          "20_0_0_.jpg", "20_0_0_1_2.jpg", "README.jpg"}) {
    EXPECT_EQ(parse_utkface_name(bad), std::nullopt) << bad;
  }
  TempDir tmp;
  write_fake_utkface(tmp / "utk");
  UtkfaceImport options;
  options.root = tmp / "utk";
  ImportCommon common;
  common.out = tmp / "utk.csv";
  options.bias = "hair";
  expect_input_error([&] { import_utkface(options, common); }, {"--bias", "hair", "gender, race or age"});
  options.bias = "gender";
  expect_input_error([&] { import_utkface(options, common); }, {"--target and --bias are both gender"});
  options.bias = "age";
  common.fractions = {0.6, 0.5};
  expect_input_error([&] { import_utkface(options, common); },
                     {"--val-fraction", "--test-fraction", "nothing to train"});
  common.fractions = {-0.1, 0.2};
  expect_input_error([&] { import_utkface(options, common); }, {"--val-fraction", "-0.1"});
  common.fractions = {};
  options.root = tmp / "none";
  expect_input_error([&] { import_utkface(options, common); }, {"none", "no such folder"});
  EXPECT_FALSE(std::filesystem::exists(common.out));
}

}  // namespace
}  // namespace ffr::data
