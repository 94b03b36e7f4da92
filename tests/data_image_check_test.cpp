// inspect --check-images' library half: every missing or undecodable image of a manifest, at once.
#include "data/image_check.h"

#include "data/image.h"
#include "data_import_test_support.h"

#include <gtest/gtest.h>

namespace ffr::data {
namespace {

using testing::TempDir;
using testing::write_file;
using testing::write_image;

TEST(DataImageCheck, ListsEveryMissingOrUndecodableImageInManifestOrder) {
  TempDir tmp;
  write_image(tmp / "ok1.png");
  write_image(tmp / "ok2.jpg");  // PNG bytes under a .jpg name decode: the content decides
  write_file(tmp / "text.png", "not an image at all");
  const std::string png = encode_png(testing::solid_image(64, 64, 1, 2, 3));
  write_file(tmp / "cut.png", png.substr(0, png.size() / 2));
  write_file(tmp / "empty.jpg", "");
  write_file(tmp / "m.csv",
             "path,split,y,b,source\n"
             "ok1.png,train,0,0,real\n"
             "missing.png,train,0,1,real\n"
             "text.png,val,1,0,real\n"
             "ok2.jpg,test,1,1,real\n"
             "cut.png,test,0,0,real\n"
             "empty.jpg,test,0,0,real\n");
  write_file(tmp / "m.json", testing::two_by_two_json());
  const Manifest m = read_manifest(tmp / "m.csv");
  for (int threads : {1, 3}) {
    const std::vector<ImageProblem> problems = check_manifest_images(m, threads);
    ASSERT_EQ(problems.size(), 4u) << threads << " threads";
    EXPECT_EQ(problems[0].sample, 1u);
    EXPECT_NE(problems[0].message.find("missing.png"), std::string::npos) << problems[0].message;
    EXPECT_NE(problems[0].message.find("m.csv:3"), std::string::npos) << problems[0].message;
    EXPECT_NE(problems[0].message.find("not found"), std::string::npos) << problems[0].message;
    EXPECT_NE(problems[1].message.find("text.png"), std::string::npos) << problems[1].message;
    EXPECT_NE(problems[1].message.find("m.csv:4"), std::string::npos) << problems[1].message;
    EXPECT_NE(problems[2].message.find("cut.png"), std::string::npos) << problems[2].message;
    EXPECT_NE(problems[3].message.find("m.csv:7): empty image file"), std::string::npos) << problems[3].message;
  }
  // The header says what decoding would give.
  const ImageHeader header = read_image_header(tmp / "ok1.png");
  EXPECT_EQ(header.width, 4);
  EXPECT_EQ(header.height, 4);
}

}  // namespace
}  // namespace ffr::data
