#include "data/manifest.h"
#include "data_test_support.h"

namespace ffr::data {
namespace {

using testing::expect_input_error;
using testing::read_file;
using testing::TempDir;
using testing::two_by_two_json;
using testing::write_file;

const char* kGoodCsv =
    "y,path,b,split,source,prompt\n"  // column order is free; prompt is optional
    "0,img/a.png,0,train,real,\n"
    "1,img/b.png,1,val,synthetic,\"a dog, outdoors\"\n"
    "1,/abs/c.png,0,test,real,\n";

// Writes m.csv + m.json into `dir` and returns the CSV path.
std::filesystem::path write_manifest_files(const TempDir& dir, const std::string& csv,
                                           const std::string& json = two_by_two_json()) {
  write_file(dir / "m.csv", csv);
  write_file(dir / "m.json", json);
  return dir / "m.csv";
}

TEST(DataManifest, ReadsColumnsInAnyOrderWithOptionalOnes) {
  TempDir dir;
  const Manifest m = read_manifest(write_manifest_files(dir, kGoodCsv));
  ASSERT_EQ(m.samples.size(), 3u);
  EXPECT_EQ(m.samples[1].y, 1);
  EXPECT_EQ(m.samples[1].split, Split::Val);
  EXPECT_EQ(m.samples[1].source, Source::Synthetic);
  EXPECT_EQ(m.samples[1].prompt, "a dog, outdoors");
  EXPECT_EQ(m.samples[1].line, 3);
  EXPECT_EQ(m.info.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(m.info.image_size, 4);
  // Paths are relative to the CSV's folder unless absolute or a root is given.
  EXPECT_EQ(m.image_path(0), dir.path() / "img/a.png");
  EXPECT_EQ(m.image_path(2), std::filesystem::path("/abs/c.png"));
  EXPECT_EQ(read_manifest(dir / "m.csv", std::filesystem::path("/data")).image_path(0),
            std::filesystem::path("/data/img/a.png"));
}

// Issue 19: synthetic images from class-only prompts (Table 5) are marked prompt_kind=agnostic;
// the column is optional (older manifests load, every image aware) and written only when used.
TEST(DataManifest, PromptKindMarksBiasAgnosticImages) {
  TempDir dir;
  EXPECT_EQ(read_manifest(write_manifest_files(dir, kGoodCsv)).samples[1].prompt_kind, PromptKind::Aware)
      << "no column: aware";
  const std::string header = "path,split,y,b,source,prompt_kind\n";
  const Manifest m = read_manifest(write_manifest_files(
      dir, header + "a.png,train,0,0,real,\nb.png,train,1,1,synthetic,agnostic\nc.png,train,1,0,synthetic,aware\n"));
  EXPECT_EQ(m.samples[0].prompt_kind, PromptKind::Aware);
  EXPECT_EQ(m.samples[1].prompt_kind, PromptKind::Agnostic);
  EXPECT_EQ(m.samples[2].prompt_kind, PromptKind::Aware);

  Manifest copy = m;
  copy.csv_path = dir / "copy.csv";
  write_manifest(copy);
  EXPECT_NE(read_file(dir / "copy.csv").find("prompt_kind"), std::string::npos);
  EXPECT_EQ(read_manifest(dir / "copy.csv").samples[1].prompt_kind, PromptKind::Agnostic);
  copy.samples[1].prompt_kind = PromptKind::Aware;
  write_manifest(copy);
  EXPECT_EQ(read_file(dir / "copy.csv").find("prompt_kind"), std::string::npos) << "not written when unused";

  const std::string csv = (dir / "m.csv").string();
  write_manifest_files(dir, header + "a.png,train,0,0,synthetic,class-only\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":2", "unknown prompt_kind 'class-only'"});
  write_manifest_files(dir, header + "a.png,train,0,0,real,agnostic\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":2", "real image"});
}

TEST(DataManifest, EveryBadInputNamesFileAndLine) {
  TempDir dir;
  const std::string header = "path,split,y,b,source\n";
  const std::string csv = (dir / "m.csv").string();
  const std::string json = (dir / "m.json").string();

  expect_input_error([&] { read_manifest(dir / "missing.csv"); }, {"missing.csv", "not found"});
  write_manifest_files(dir, "");
  expect_input_error([&] { read_manifest(csv); }, {csv, "empty file"});
  write_manifest_files(dir, "path,split,y,source\na.png,train,0,real\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":1", "missing required column 'b'"});
  write_manifest_files(dir, header + "a.png,train,0,0,real\nb.png,training,0,0,real\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":3", "unknown split 'training'"});
  write_manifest_files(dir, header + "a.png,train,0,0,fake\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":2", "unknown source 'fake'"});
  write_manifest_files(dir, header + "a.png,train,0,0,real\na.png,train,2,0,real\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":3", "y=2 out of range"});
  write_manifest_files(dir, header + "a.png,train,0,-1,real\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":2", "b=-1 out of range"});
  write_manifest_files(dir, header + "a.png,train,x,0,real\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":2", "y must be an integer"});
  write_manifest_files(dir, header + "a.png,train,0,0\n");
  expect_input_error([&] { read_manifest(csv); }, {csv + ":2", "expected 5 fields"});
  write_manifest_files(dir, header + "a.png,train,1,0,real\n", two_by_two_json("[[0,0],[0,1],[1,1]]"));
  expect_input_error([&] { read_manifest(csv); }, {csv + ":2", "group (y=1, b=0) is not declared", json});
  write_manifest_files(dir, header + "a.png,train,0,0,real\n", "{\"class_names\": [\"cat\",\n  \"dog\"\n  oops}");
  expect_input_error([&] { read_manifest(csv); }, {json + ":3", "invalid JSON"});
  write_manifest_files(dir, header + "a.png,train,0,0,real\n", R"({"class_names": ["cat"], "bias_names": ["x"]})");
  expect_input_error([&] { read_manifest(csv); }, {json, "'groups'"});
  write_file(dir / "m.csv", header + "a.png,train,0,0,real\n");
  std::filesystem::remove(dir / "m.json");
  expect_input_error([&] { read_manifest(csv); }, {json, "sidecar not found"});
}

TEST(DataManifest, WriteThenReadRoundTripsAndLeavesNoTempFiles) {
  TempDir dir;
  Manifest m = read_manifest(write_manifest_files(dir, kGoodCsv));
  m.csv_path = dir / "out" / "copy.csv";
  std::filesystem::create_directories(dir / "out");
  m.samples[0].generator = "sd-1.5";
  m.info.majority_bias = {0, 1};
  write_manifest(m);

  const Manifest back = read_manifest(dir / "out" / "copy.csv", dir.path());
  ASSERT_EQ(back.samples.size(), m.samples.size());
  for (size_t i = 0; i < m.samples.size(); ++i) {
    EXPECT_EQ(back.samples[i].path, m.samples[i].path);
    EXPECT_EQ(back.samples[i].y, m.samples[i].y);
    EXPECT_EQ(back.samples[i].b, m.samples[i].b);
    EXPECT_EQ(back.samples[i].split, m.samples[i].split);
    EXPECT_EQ(back.samples[i].source, m.samples[i].source);
    EXPECT_EQ(back.samples[i].prompt, m.samples[i].prompt);
    EXPECT_EQ(back.samples[i].generator, m.samples[i].generator);
  }
  EXPECT_EQ(back.info.groups, m.info.groups);
  EXPECT_EQ(back.info.majority_bias, m.info.majority_bias);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir / "out")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"copy.csv", "copy.json"}));
}

TEST(DataManifest, InvalidManifestIsNotWrittenAndOldFileSurvives) {
  TempDir dir;
  Manifest m = read_manifest(write_manifest_files(dir, kGoodCsv));
  const std::string before = read_file(dir / "m.csv");
  m.samples[1].y = 5;  // out of range: validation runs before any byte is written
  expect_input_error([&] { write_manifest(m); }, {"y=5 out of range"});
  EXPECT_EQ(read_file(dir / "m.csv"), before);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 2u);
}

}  // namespace
}  // namespace ffr::data
