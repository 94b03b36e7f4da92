#include "data/import/spuco_animals.h"

#include "engine/error.h"

#include <algorithm>
#include <optional>

namespace ffr::data {

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kClasses = {"small_dogs", "big_dogs", "landbirds", "waterbirds"};
const std::vector<std::string> kBackgrounds = {"indoor", "outdoor", "land", "water"};

std::optional<Split> split_folder(const std::string& name) {
  if (name == "train") return Split::Train;
  if (name == "val" || name == "valid") return Split::Val;
  if (name == "test") return Split::Test;
  return std::nullopt;
}

int index_of(const std::vector<std::string>& names, const std::string& name, const fs::path& folder, const char* what) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) return int(it - names.begin());
  std::string known;
  for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
  throw InputError(folder.string() + ": folder '" + name + "' is not a SpuCo Animals " + what + " (expected " + known +
                   "; layout <split>/<class>/<background>/<image>)");
}

}  // namespace

ImportResult import_spuco_animals(const SpucoAnimalsImport& o, const ImportCommon& common) {
  ImportResult r;
  Manifest& m = r.manifest;
  m.info.class_names = kClasses;
  m.info.bias_names = kBackgrounds;
  int with_split = 0, without_split = 0;
  fs::path example_with, example_without;
  for (const fs::path& image : list_images(o.root)) {
    const fs::path background = image.parent_path();
    const fs::path klass = background.parent_path();
    const std::optional<Split> split = split_folder(klass.parent_path().filename().string());
    Sample s;
    s.path = path_for_manifest(image, common.out);
    s.y = index_of(kClasses, klass.filename().string(), klass, "class");
    s.b = index_of(kBackgrounds, background.filename().string(), background, "background");
    if (split) {
      s.split = *split;
      ++with_split;
      example_with = image;
    } else {
      ++without_split;
      example_without = image;
    }
    m.samples.push_back(std::move(s));
  }
  if (with_split > 0 && without_split > 0) {
    throw InputError(detail::concat(o.root.string(), ": ", with_split, " images sit in split folders (e.g. ",
                                    example_with.string(), ") and ", without_split, " do not (e.g. ",
                                    example_without.string(), "); import one layout at a time"));
  }
  if (without_split > 0) {
    r.warnings.push_back(detail::concat(o.root.string(), ": no train/val/test folders; a seeded split was made (val ",
                                        common.fractions.val, ", test ", common.fractions.test, ", seed ", common.seed,
                                        ")"));
    assign_seeded_split(m.samples, common.fractions, common.seed);
  }
  finish_manifest(m, common);
  return r;
}

}  // namespace ffr::data
