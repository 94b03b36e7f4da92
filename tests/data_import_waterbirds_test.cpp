// import waterbirds on a fake waterbird_complete95_forest2water2 folder (metadata.csv + species folders).
#include "data/import/waterbirds.h"

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

const char* kHeader = "img_id,img_filename,y,split,place,place_filename\n";

TEST(DataImportWaterbirds, MetadataGivesLabelsPlaceAndSplit) {
  TempDir tmp;
  const auto root = tmp / "waterbird_complete95_forest2water2";
  const std::vector<std::string> files = {"001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg",
                                          "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg",
                                          "014.Indigo_Bunting/Indigo_Bunting_0010_13.jpg",
                                          "014.Indigo_Bunting/Indigo_Bunting_0012_14.jpg"};
  for (const std::string& f : files) write_image(root / f);
  write_file(root / "metadata.csv", std::string(kHeader) + "1," + files[0] +
                                        ",1,0,1,/o/ocean/00002178.jpg\n"
                                        "2," +
                                        files[1] +
                                        ",1,1,0,/l/lake/natural/00000065.jpg\n"
                                        "3," +
                                        files[2] +
                                        ",0,2,0,/b/bamboo_forest/00000131.jpg\n"
                                        "4," +
                                        files[3] + ",0,0,1,/f/forest/broadleaf/00000193.jpg\n");
  WaterbirdsImport options;
  options.root = root;
  ImportCommon common;
  common.out = tmp / "wb" / "waterbirds.csv";
  const Manifest m = import_and_read_back([&] { return import_waterbirds(options, common); }, common.out);
  EXPECT_EQ(m.info.class_names, (std::vector<std::string>{"landbird", "waterbird"}));
  EXPECT_EQ(m.info.bias_names, (std::vector<std::string>{"land", "water"}));
  const testing::GroupCountsBySplit expected = {
      {{"train", 1, 1}, 1}, {{"val", 1, 0}, 1}, {{"test", 0, 0}, 1}, {{"train", 0, 1}, 1}};
  EXPECT_EQ(counts_of(m), expected);
  EXPECT_EQ(m.samples[0].path, "../waterbird_complete95_forest2water2/" + files[0]);
}

TEST(DataImportWaterbirds, MalformedMetadataNamesTheLine) {
  TempDir tmp;
  WaterbirdsImport options;
  options.root = tmp.path();
  ImportCommon common;
  common.out = tmp / "out.csv";
  expect_input_error([&] { import_waterbirds(options, common); }, {"metadata.csv", "not found"});
  write_file(tmp / "metadata.csv", "img_id,img_filename,y,split\n1,a.jpg,0,0\n");
  expect_input_error([&] { import_waterbirds(options, common); }, {"metadata.csv:1", "place"});
  write_file(tmp / "metadata.csv", std::string(kHeader) + "1,a.jpg,0,0,0,x\n2,b.jpg,2,0,0,x\n");
  expect_input_error([&] { import_waterbirds(options, common); }, {"metadata.csv:3", "y is '2'"});
  write_file(tmp / "metadata.csv", std::string(kHeader) + "1,a.jpg,0,3,0,x\n");
  expect_input_error([&] { import_waterbirds(options, common); }, {"metadata.csv:2", "split is '3'", "0, 1 or 2"});
  write_file(tmp / "metadata.csv", std::string(kHeader) + "1,a.jpg,0,0\n");
  expect_input_error([&] { import_waterbirds(options, common); }, {"metadata.csv:2", "4 fields", "header has 6"});
  EXPECT_FALSE(std::filesystem::exists(common.out));
}

}  // namespace
}  // namespace ffr::data
