// import celeba on a fake archive laid out as the official one (list_attr_celeba.txt,
// list_eval_partition.txt, img_align_celeba/; CelebA-HQ's mapping file and <idx>.jpg images).
#include "data/import/celeba.h"

#include "data_import_test_support.h"

#include <gtest/gtest.h>

namespace ffr::data {
namespace {

using testing::counts_of;
using testing::expect_input_error;
using testing::import_and_read_back;
using testing::TempDir;
using testing::write_file;
using testing::write_image;

// Six images; attributes as the real file spells them (count line, names line with a trailing
// space, values padded to two characters).
void write_fake_celeba(const std::filesystem::path& root) {
  std::filesystem::create_directories(root);
  write_file(root / "list_attr_celeba.txt",
             "6\n"
             "5_o_Clock_Shadow Male Smiling Young \n"
             "000001.jpg -1  1  1  1\n"
             "000002.jpg -1 -1  1  1\n"
             "000003.jpg  1  1 -1 -1\n"
             "000004.jpg -1 -1 -1  1\n"
             "000005.jpg -1 -1  1 -1\n"
             "000006.jpg  1  1  1  1\n");
  write_file(root / "list_eval_partition.txt",
             "000001.jpg 0\n000002.jpg 0\n000003.jpg 0\n000004.jpg 1\n000005.jpg 2\n000006.jpg 2\n");
  for (int i = 1; i <= 6; ++i) write_image(root / "img_align_celeba" / detail::concat("00000", i, ".jpg"));
}

TEST(DataImportCeleba, PaperDefaultsSmilingAgainstMale) {
  TempDir tmp;
  write_fake_celeba(tmp / "celeba");
  const auto out = tmp / "manifests" / "celeba.csv";
  CelebaImport options;
  options.root = tmp / "celeba";
  ImportCommon common;
  common.out = out;
  const Manifest m = import_and_read_back([&] { return import_celeba(options, common); }, out);
  EXPECT_EQ(m.info.class_names, (std::vector<std::string>{"not_Smiling", "Smiling"}));
  EXPECT_EQ(m.info.bias_names, (std::vector<std::string>{"not_Male", "Male"}));
  EXPECT_EQ(m.info.image_size, 4);
  ASSERT_EQ(m.samples.size(), 6u);
  EXPECT_EQ(m.samples[0].path, "../celeba/img_align_celeba/000001.jpg");
  EXPECT_EQ(m.samples[0].orig_id, "000001.jpg");
  EXPECT_EQ(m.samples[0].source, Source::Real);
  const testing::GroupCountsBySplit expected = {{{"train", 1, 1}, 1}, {{"train", 1, 0}, 1}, {{"train", 0, 1}, 1},
                                                {{"val", 0, 0}, 1},   {{"test", 1, 0}, 1},  {{"test", 1, 1}, 1}};
  EXPECT_EQ(counts_of(m), expected);
  EXPECT_EQ(m.info.groups.size(), 4u);
}

TEST(DataImportCeleba, OtherAttributesAndCelebaHq) {
  TempDir tmp;
  write_fake_celeba(tmp / "celeba");
  // CelebA-HQ: HQ image 0 is CelebA's 000003, HQ image 1 is 000005.
  write_file(
      tmp / "celeba" / "CelebA-HQ-to-CelebA-mapping.txt",
      "idx         orig_idx    orig_file\n0           2           000003.jpg\n1           4           000005.jpg\n");
  write_image(tmp / "celeba" / "CelebA-HQ-img" / "0.jpg");
  write_image(tmp / "celeba" / "CelebA-HQ-img" / "1.jpg");
  CelebaImport options;
  options.root = tmp / "celeba";
  options.hq_mapping = tmp / "celeba" / "CelebA-HQ-to-CelebA-mapping.txt";
  options.target = "Young";
  ImportCommon common;
  common.out = tmp / "hq.csv";
  const Manifest m = import_and_read_back([&] { return import_celeba(options, common); }, common.out);
  ASSERT_EQ(m.samples.size(), 2u);
  EXPECT_EQ(m.samples[0].path, "celeba/CelebA-HQ-img/0.jpg");
  EXPECT_EQ(m.samples[0].orig_id, "000003.jpg");
  EXPECT_EQ(m.samples[0].y, 0);  // 000003: not Young
  EXPECT_EQ(m.samples[0].b, 1);  // Male
  EXPECT_EQ(m.samples[0].split, Split::Train);
  EXPECT_EQ(m.samples[1].y, 0);
  EXPECT_EQ(m.samples[1].b, 0);
  EXPECT_EQ(m.samples[1].split, Split::Test);
  EXPECT_EQ(m.info.class_names[1], "Young");
}

TEST(DataImportCeleba, MalformedListsNameFileAndLine) {
  TempDir tmp;
  const auto root = tmp / "celeba";
  write_fake_celeba(root);
  CelebaImport options;
  options.root = root;
  ImportCommon common;
  common.out = tmp / "out.csv";
  options.target = "Smilling";
  expect_input_error([&] { import_celeba(options, common); },
                     {"--target", "Smilling", "list_attr_celeba.txt:2", "Smiling"});
  options.target = "Smiling";
  options.bias = "Smiling";
  expect_input_error([&] { import_celeba(options, common); }, {"--target and --bias are both Smiling"});
  options.bias = "Male";

  const std::string good_attributes = testing::read_file(root / "list_attr_celeba.txt");
  write_file(root / "list_attr_celeba.txt",
             "2\n5_o_Clock_Shadow Male Smiling Young\n000001.jpg -1 1 1 1\n000002.jpg -1 0 1 1\n");
  expect_input_error([&] { import_celeba(options, common); }, {"list_attr_celeba.txt:4", "Male", "000002.jpg", "'0'"});
  write_file(root / "list_attr_celeba.txt", "2\n5_o_Clock_Shadow Male Smiling Young\n000001.jpg -1 1 1\n");
  expect_input_error([&] { import_celeba(options, common); }, {"list_attr_celeba.txt:3", "4 values", "got 4 fields"});
  write_file(root / "list_attr_celeba.txt", good_attributes);

  write_file(root / "list_eval_partition.txt", "000001.jpg 0\n000002.jpg 3\n");
  expect_input_error([&] { import_celeba(options, common); }, {"list_eval_partition.txt:2", "000002.jpg 3"});
  write_file(root / "list_eval_partition.txt", "000001.jpg 0\n");
  expect_input_error([&] { import_celeba(options, common); }, {"list_eval_partition.txt", "does not list 000002.jpg"});
  std::filesystem::remove(root / "list_eval_partition.txt");
  expect_input_error([&] { import_celeba(options, common); }, {"list_eval_partition.txt", "not found"});
  EXPECT_FALSE(std::filesystem::exists(common.out)) << "nothing may be written on a refused import";

  options.hq_mapping = tmp / "mapping.txt";
  write_file(root / "list_eval_partition.txt",
             "000001.jpg 0\n000002.jpg 0\n000003.jpg 0\n000004.jpg 1\n000005.jpg 2\n000006.jpg 2\n");
  std::filesystem::create_directories(root / "CelebA-HQ-img");
  write_file(options.hq_mapping, "idx orig_idx orig_file\n0 2\n");
  expect_input_error([&] { import_celeba(options, common); }, {"mapping.txt:2", "idx orig_idx orig_file"});
}

}  // namespace
}  // namespace ffr::data
