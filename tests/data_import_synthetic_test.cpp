// import synthetic (a <class>/<bias>/ folder tree or a CSV) and import merge (real + synthetic).
#include "data/import/merge.h"
#include "data/import/synthetic.h"
#include "data/import/waterbirds.h"

#include "data/protocol.h"
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

// A real two-class Waterbirds-like manifest (through the waterbirds importer) to merge with.
std::filesystem::path write_real(const TempDir& tmp) {
  const auto root = tmp / "wb";
  std::string meta = "img_id,img_filename,y,split,place,place_filename\n";
  int id = 0;
  for (int y = 0; y < 2; ++y) {
    for (int place = 0; place < 2; ++place) {
      for (int split = 0; split < 3; ++split) {
        for (int k = 0; k < (place == y ? 4 : 2); ++k) {
          const std::string file = detail::concat("birds/", y, place, split, k, ".jpg");
          write_image(root / file);
          meta += detail::concat(++id, ",", file, ",", y, ",", split, ",", place, ",x\n");
        }
      }
    }
  }
  write_file(root / "metadata.csv", meta);
  WaterbirdsImport options;
  options.root = root;
  ImportCommon common;
  common.out = tmp / "manifests" / "real.csv";
  write_imported_manifest(import_waterbirds(options, common).manifest);
  return common.out;
}

// Stable-Diffusion-style folders: <class>/<bias>/, 10 images per group.
void write_generated(const std::filesystem::path& root) {
  for (const char* klass : {"landbird", "waterbird"}) {
    for (const char* bias : {"land", "water"}) {
      for (int k = 0; k < 10; ++k) write_image(root / klass / bias / detail::concat("sd_", k, ".png"));
    }
  }
}

TEST(DataImportSynthetic, FolderTreeIsMarkedSyntheticWithAHeldOutShare) {
  TempDir tmp;
  const auto real = write_real(tmp);
  write_generated(tmp / "generated");
  SyntheticImport options;
  options.root = tmp / "generated";
  options.like = real;
  options.generator = "stable-diffusion-v1-4";
  ImportCommon common;
  common.out = tmp / "manifests" / "synthetic.csv";
  common.fractions = {0.0, 0.1};
  const Manifest m = import_and_read_back([&] { return import_synthetic(options, common); }, common.out);
  EXPECT_EQ(m.info.class_names, (std::vector<std::string>{"landbird", "waterbird"}));
  ASSERT_EQ(m.samples.size(), 40u);
  for (const Sample& s : m.samples) {
    EXPECT_EQ(s.source, Source::Synthetic);
    EXPECT_EQ(s.generator, "stable-diffusion-v1-4");
  }
  testing::GroupCountsBySplit expected;
  for (int y = 0; y < 2; ++y) {
    for (int b = 0; b < 2; ++b) expected[{"train", y, b}] = 9, expected[{"test", y, b}] = 1;
  }
  EXPECT_EQ(counts_of(m), expected);
  EXPECT_EQ(m.samples[0].path, "../generated/landbird/land/sd_0.png");
}

TEST(DataImportSynthetic, CsvWithPromptsAndSplits) {
  TempDir tmp;
  write_generated(tmp / "gen");
  write_file(tmp / "gen" / "images.csv",
             "path,class,bias,prompt,generator,split\n"
             "landbird/water/sd_0.png,landbird,water,\"A photo of water, landbird\",sd-1.4,train\n"
             "waterbird/land/sd_0.png,waterbird,land,A photo of land waterbird,sd-1.4,test\n");
  SyntheticImport options;
  options.csv = tmp / "gen" / "images.csv";
  ImportCommon common;
  common.out = tmp / "syn.csv";
  const Manifest m = import_and_read_back([&] { return import_synthetic(options, common); }, common.out);
  ASSERT_EQ(m.samples.size(), 2u);
  EXPECT_EQ(m.samples[0].prompt, "A photo of water, landbird");
  EXPECT_EQ(m.samples[0].generator, "sd-1.4");
  EXPECT_EQ(m.samples[0].split, Split::Train);
  EXPECT_EQ(m.samples[1].split, Split::Test);
  EXPECT_EQ(m.samples[0].path, "gen/landbird/water/sd_0.png");
  // Without --like, names in sorted order.
  EXPECT_EQ(m.info.bias_names, (std::vector<std::string>{"land", "water"}));

  // Malformed: file and line named.
  write_file(tmp / "gen" / "images.csv", "path,class\nx.png,landbird\n");
  expect_input_error([&] { import_synthetic(options, common); }, {"images.csv:1", "no column 'bias'"});
  write_file(tmp / "gen" / "images.csv", "path,class,bias,split\nlandbird/land/sd_0.png,landbird,land,later\n");
  expect_input_error([&] { import_synthetic(options, common); }, {"images.csv:2", "split 'later'"});
  write_file(tmp / "gen" / "images.csv", "path,class,bias\nlandbird/land/sd_0.png,,land\n");
  expect_input_error([&] { import_synthetic(options, common); }, {"images.csv:2", "must not be empty"});
}

TEST(DataImportSynthetic, NamesOutsideTheRealSetAndBadTreesAreRefused) {
  TempDir tmp;
  const auto real = write_real(tmp);
  write_generated(tmp / "generated");
  write_image(tmp / "generated" / "penguin" / "ice" / "0.png");
  SyntheticImport options;
  options.root = tmp / "generated";
  options.like = real;
  ImportCommon common;
  common.out = tmp / "syn.csv";
  expect_input_error([&] { import_synthetic(options, common); },
                     {"penguin", "not one of the --like manifest's", "landbird"});
  std::filesystem::remove_all(tmp / "generated" / "penguin");
  write_image(tmp / "generated" / "landbird" / "0.png");  // not inside a bias folder
  expect_input_error([&] { import_synthetic(options, common); }, {"landbird/0.png", "<class>/<bias>/<image>"});
  options.csv = tmp / "x.csv";
  expect_input_error([&] { import_synthetic(options, common); }, {"either --root", "--csv"});
}

TEST(DataImportMerge, RealPlusSyntheticGoesThroughTheProtocol) {
  TempDir tmp;
  const auto real = write_real(tmp);
  write_generated(tmp / "generated");
  SyntheticImport options;
  options.root = tmp / "generated";
  options.like = real;
  ImportCommon common;
  common.out = tmp / "manifests" / "synthetic.csv";
  common.fractions = {0.0, 0.1};
  write_imported_manifest(import_synthetic(options, common).manifest);

  MergeImport merge;
  merge.real = real;
  merge.synthetic = common.out;
  ImportCommon out;
  out.out = tmp / "merged" / "all.csv";
  const Manifest m = import_and_read_back([&] { return merge_manifests(merge, out); }, out.out);
  const Manifest r = read_manifest(real);
  ASSERT_EQ(m.samples.size(), r.samples.size() + 40);
  EXPECT_EQ(m.samples[0].path, "../wb/birds/0000.jpg");
  // The protocol finds both sources: FFR's stage-1 set is the synthetic train images.
  ProtocolConfig protocol;
  protocol.bias_ratio = 0.7;
  protocol.augmentation = Augmentation::FFR;
  const ExperimentSplits splits = make_experiment_splits(m, protocol);
  EXPECT_FALSE(splits.pretrain.empty());
  for (size_t i : splits.pretrain) EXPECT_EQ(m.samples[i].source, Source::Synthetic);
  for (size_t i : splits.train) EXPECT_EQ(m.samples[i].source, Source::Real);
}

TEST(DataImportMerge, DifferentNamesOrSourcesAreRefused) {
  TempDir tmp;
  const auto real = write_real(tmp);
  write_generated(tmp / "generated");
  SyntheticImport options;
  options.root = tmp / "generated";  // no --like: sorted names, which here match by luck...
  ImportCommon common;
  common.out = tmp / "syn.csv";
  write_imported_manifest(import_synthetic(options, common).manifest);
  // ...so rename a class in the real one's sidecar to make them differ.
  const auto sidecar = sidecar_path(real);
  std::string json = testing::read_file(sidecar);
  json.replace(json.find("waterbird"), 9, "seabird__");
  write_file(sidecar, json);
  MergeImport merge;
  merge.real = real;
  merge.synthetic = common.out;
  ImportCommon out;
  out.out = tmp / "all.csv";
  expect_input_error([&] { merge_manifests(merge, out); },
                     {"class names differ", "real.json", "seabird__", "syn.json", "--like"});
  // A real manifest given as the synthetic one.
  merge.synthetic = real;
  expect_input_error([&] { merge_manifests(merge, out); }, {"real.csv:2", "a real sample in the synthetic manifest"});
  EXPECT_FALSE(std::filesystem::exists(out.out));
}

}  // namespace
}  // namespace ffr::data
