// UTKFace (https://susanqq.github.io/UTKFace/): the labels are in the file names,
// "[age]_[gender]_[race]_[date&time].jpg" (the aligned-and-cropped archive appends ".chip.jpg"):
// age 0..116, gender 0 male / 1 female, race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others.
// A few files of the published archive miss a field; they are not dropped silently: the
// import lists them in one warning with their count.
//
// The archive has no split: a seeded per-group split (SplitFractions) makes one.
// y and b are each one of gender, race or age (age in two classes, young below --age-split
// and old from it). The paper: target gender, bias age (young versus old, the authors' reply to
// the reviews; the paper does not state the cut, 20 here is our assumption: check it against
// the authors' code before comparing numbers).
#pragma once

#include "data/import/imported_manifest.h"

#include <optional>

namespace ffr::data {

struct UtkfaceImport {
  std::filesystem::path root;  // the folder holding the images (searched recursively)
  std::string target = "gender";
  std::string bias = "age";
  int age_split = 20;  // young: age < age_split; old: age >= age_split
};

// One parsed name; nullopt when the name does not follow the scheme.
struct UtkfaceLabels {
  int age = 0, gender = 0, race = 0;
};
std::optional<UtkfaceLabels> parse_utkface_name(const std::string& file_name);

ImportResult import_utkface(const UtkfaceImport& options, const ImportCommon& common);

}  // namespace ffr::data
