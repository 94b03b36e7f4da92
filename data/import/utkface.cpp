#include "data/import/utkface.h"

#include "engine/error.h"

#include <sstream>

namespace ffr::data {

namespace {

namespace fs = std::filesystem;

std::optional<int> small_number(const std::string& text, int max) {
  if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int v = std::stoi(text);
  return v <= max ? std::optional<int>(v) : std::nullopt;
}

struct Attribute {
  std::vector<std::string> names;
  int (*value)(const UtkfaceLabels&, int age_split);
};

Attribute attribute(const std::string& name, const char* flag, int age_split) {
  if (name == "gender") return {{"male", "female"}, [](const UtkfaceLabels& l, int) { return l.gender; }};
  if (name == "race") {
    return {{"white", "black", "asian", "indian", "others"}, [](const UtkfaceLabels& l, int) { return l.race; }};
  }
  if (name == "age") {
    return {{detail::concat("young (<", age_split, ")"), detail::concat("old (>=", age_split, ")")},
            [](const UtkfaceLabels& l, int split) { return l.age < split ? 0 : 1; }};
  }
  throw InputError(std::string(flag) + ": unknown UTKFace attribute '" + name + "' (expected gender, race or age)");
}

}  // namespace

std::optional<UtkfaceLabels> parse_utkface_name(const std::string& file_name) {
  const std::string stem = file_name.substr(0, file_name.find('.'));
  std::vector<std::string> fields;
  std::istringstream in(stem);
  for (std::string f; std::getline(in, f, '_');) fields.push_back(f);
  if (fields.size() != 4 || fields[3].empty()) return std::nullopt;
  const auto age = small_number(fields[0], 150), gender = small_number(fields[1], 1), race = small_number(fields[2], 4);
  if (!age || !gender || !race) return std::nullopt;
  return UtkfaceLabels{*age, *gender, *race};
}

ImportResult import_utkface(const UtkfaceImport& o, const ImportCommon& common) {
  if (o.age_split < 1) throw InputError(detail::concat("--age-split: must be >= 1, got ", o.age_split));
  const Attribute target = attribute(o.target, "--target", o.age_split);
  const Attribute bias = attribute(o.bias, "--bias", o.age_split);
  if (o.target == o.bias) throw InputError("--target and --bias are both " + o.target);

  ImportResult r;
  Manifest& m = r.manifest;
  m.info.class_names = target.names;
  m.info.bias_names = bias.names;
  std::vector<std::string> unparsed;
  for (const fs::path& image : list_images(o.root)) {
    const std::optional<UtkfaceLabels> labels = parse_utkface_name(image.filename().string());
    if (!labels) {
      unparsed.push_back(image.filename().string());
      continue;
    }
    Sample s;
    s.path = path_for_manifest(image, common.out);
    s.y = target.value(*labels, o.age_split);
    s.b = bias.value(*labels, o.age_split);
    s.orig_id = image.filename().string();
    m.samples.push_back(std::move(s));
  }
  if (!unparsed.empty()) {
    std::string list;
    for (const std::string& name : unparsed) list += "\n  " + name;
    r.warnings.push_back(detail::concat(unparsed.size(), " file(s) under ", o.root.string(),
                                        " do not follow age_gender_race_date.jpg and were left out:", list));
  }
  assign_seeded_split(m.samples, common.fractions, common.seed);
  finish_manifest(m, common);
  return r;
}

}  // namespace ffr::data
