#include "data/import/celeba.h"

#include "engine/error.h"

#include <fstream>
#include <map>
#include <sstream>

namespace ffr::data {

namespace {

namespace fs = std::filesystem;

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::ifstream open_list(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw InputError(file.string() + ": not found (expected in the CelebA folder given with --root)");
  return in;
}

std::string at(const fs::path& file, int line) { return detail::concat(file.string(), ":", line, ": "); }

struct Attributes {
  std::vector<std::string> names;
  std::map<std::string, std::vector<int8_t>> by_image;  // file name -> one +-1 per attribute
};

Attributes read_attributes(const fs::path& file) {
  std::ifstream in = open_list(file);
  Attributes a;
  std::string text;
  int line = 0;
  if (!std::getline(in, text)) throw InputError(at(file, 1) + "empty file (expected the image count)");
  ++line;
  if (!std::getline(in, text)) throw InputError(at(file, 2) + "missing the line of attribute names");
  ++line;
  a.names = words_of(text);
  if (a.names.empty()) throw InputError(at(file, 2) + "no attribute names");
  while (std::getline(in, text)) {
    ++line;
    const std::vector<std::string> w = words_of(text);
    if (w.empty()) continue;
    if (w.size() != a.names.size() + 1) {
      throw InputError(detail::concat(at(file, line), "expected an image name and ", a.names.size(), " values, got ",
                                      w.size(), " fields"));
    }
    std::vector<int8_t> values;
    for (size_t k = 1; k < w.size(); ++k) {
      if (w[k] != "1" && w[k] != "-1") {
        throw InputError(at(file, line) + "attribute " + a.names[k - 1] + " of " + w[0] + " is '" + w[k] +
                         "' (expected 1 or -1)");
      }
      values.push_back(w[k] == "1" ? 1 : -1);
    }
    if (!a.by_image.emplace(w[0], std::move(values)).second)
      throw InputError(at(file, line) + w[0] + " is listed twice");
  }
  return a;
}

size_t attribute_index(const Attributes& a, const std::string& name, const fs::path& file, const char* flag) {
  for (size_t k = 0; k < a.names.size(); ++k) {
    if (a.names[k] == name) return k;
  }
  std::string known;
  for (const std::string& n : a.names) known += (known.empty() ? "" : ", ") + n;
  throw InputError(std::string(flag) + ": no attribute '" + name + "' in " + file.string() + ":2 (it has " + known +
                   ")");
}

std::map<std::string, Split> read_partition(const fs::path& file) {
  std::ifstream in = open_list(file);
  std::map<std::string, Split> out;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    const std::vector<std::string> w = words_of(text);
    if (w.empty()) continue;
    if (w.size() != 2 || (w[1] != "0" && w[1] != "1" && w[1] != "2")) {
      throw InputError(at(file, line) + "expected '<image> <0|1|2>' (train, val, test), got '" + text + "'");
    }
    out[w[0]] = w[1] == "0" ? Split::Train : w[1] == "1" ? Split::Val : Split::Test;
  }
  return out;
}

// CelebA-HQ's (HQ image name, CelebA image name) pairs.
std::vector<std::pair<std::string, std::string>> read_hq_mapping(const fs::path& file) {
  std::ifstream in = open_list(file);
  std::vector<std::pair<std::string, std::string>> out;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    const std::vector<std::string> w = words_of(text);
    if (w.empty() || (line == 1 && !w.empty() && w[0] == "idx")) continue;  // the header line
    if (w.size() != 3 || w[0].find_first_not_of("0123456789") != std::string::npos) {
      throw InputError(at(file, line) + "expected 'idx orig_idx orig_file', got '" + text + "'");
    }
    out.emplace_back(w[0] + ".jpg", w[2]);
  }
  return out;
}

}  // namespace

ImportResult import_celeba(const CelebaImport& o, const ImportCommon& common) {
  const fs::path attr_file = o.root / "list_attr_celeba.txt";
  const fs::path partition_file = o.root / "list_eval_partition.txt";
  const Attributes attributes = read_attributes(attr_file);
  const size_t target = attribute_index(attributes, o.target, attr_file, "--target");
  const size_t bias = attribute_index(attributes, o.bias, attr_file, "--bias");
  if (target == bias) throw InputError("--target and --bias are both " + o.target);
  const std::map<std::string, Split> partition = read_partition(partition_file);

  const bool hq = !o.hq_mapping.empty();
  const fs::path images = !o.images.empty() ? o.images : o.root / (hq ? "CelebA-HQ-img" : "img_align_celeba");
  if (!fs::is_directory(images)) {
    throw InputError(images.string() + ": no such image folder (give it with --images)");
  }
  // (image file, CelebA name its labels come from)
  std::vector<std::pair<std::string, std::string>> files;
  if (hq) {
    files = read_hq_mapping(o.hq_mapping);
  } else {
    for (const auto& [name, values] : attributes.by_image) files.emplace_back(name, name);
  }

  ImportResult r;
  Manifest& m = r.manifest;
  m.info.class_names = {"not_" + o.target, o.target};
  m.info.bias_names = {"not_" + o.bias, o.bias};
  for (const auto& [file, celeba_name] : files) {
    auto labels = attributes.by_image.find(celeba_name);
    if (labels == attributes.by_image.end()) {
      throw InputError(detail::concat(hq ? o.hq_mapping.string() : attr_file.string(), ": ", celeba_name, " is not in ",
                                      attr_file.string()));
    }
    auto split = partition.find(celeba_name);
    if (split == partition.end()) throw InputError(partition_file.string() + ": does not list " + celeba_name);
    Sample s;
    s.path = path_for_manifest(images / file, common.out);
    s.split = split->second;
    s.y = labels->second[target] > 0 ? 1 : 0;
    s.b = labels->second[bias] > 0 ? 1 : 0;
    s.source = Source::Real;
    s.orig_id = celeba_name;
    m.samples.push_back(std::move(s));
  }
  finish_manifest(m, common);
  return r;
}

}  // namespace ffr::data
