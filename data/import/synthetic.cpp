#include "data/import/synthetic.h"

#include "data/csv.h"
#include "engine/error.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace ffr::data {

namespace {

namespace fs = std::filesystem;

// Name -> index, from `like`'s sidecar or from the names found (sorted).
struct Names {
  std::vector<std::string> names;
  bool fixed = false;  // from `like`: an unknown name is an error
  int index(const std::string& name, const std::string& where, const char* what) const {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it != names.end()) return int(it - names.begin());
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    throw InputError(where + ": " + what + " '" + name + "' is not one of the --like manifest's (" + known + ")");
  }
};

Names names_from(const fs::path& like, const std::set<std::string>& found, bool classes) {
  if (like.empty()) return {std::vector<std::string>(found.begin(), found.end()), false};
  const DatasetInfo info = read_dataset_info(sidecar_path(like));
  return {classes ? info.class_names : info.bias_names, true};
}

std::optional<Split> parse_split(const std::string& text) {
  if (text == "train") return Split::Train;
  if (text == "val") return Split::Val;
  if (text == "test") return Split::Test;
  return std::nullopt;
}

struct Row {
  fs::path image;
  std::string klass, bias, prompt, generator, where, prompt_kind;
  std::optional<Split> split;
};

std::vector<Row> rows_from_folders(const SyntheticImport& o) {
  std::vector<Row> rows;
  for (const fs::path& image : list_images(o.root)) {
    const fs::path bias = image.parent_path(), klass = bias.parent_path();
    const fs::path relative =
        fs::absolute(image).lexically_normal().lexically_relative(fs::absolute(o.root).lexically_normal());
    if (std::distance(relative.begin(), relative.end()) != 3) {
      throw InputError(image.string() + ": not at <class>/<bias>/<image> under " + o.root.string() +
                       " (one subfolder per class, one per bias inside it)");
    }
    rows.push_back({image, klass.filename().string(), bias.filename().string(), "", o.generator, image.string(), {}});
  }
  return rows;
}

std::vector<Row> rows_from_csv(const SyntheticImport& o) {
  std::ifstream in(o.csv, std::ios::binary);
  if (!in) throw InputError(o.csv.string() + ": not found");
  std::ostringstream text;
  text << in.rdbuf();
  const std::vector<CsvRecord> records = parse_csv(text.str(), o.csv.string());
  if (records.empty()) throw InputError(o.csv.string() + ":1: empty file (expected a header row)");
  std::map<std::string, size_t> column;
  for (size_t k = 0; k < records[0].fields.size(); ++k) column[records[0].fields[k]] = k;
  for (const char* needed : {"path", "class", "bias"}) {
    if (!column.count(needed)) {
      throw InputError(o.csv.string() + ":1: no column '" + needed +
                       "' (expected path,class,bias[,prompt,generator,split,prompt_kind])");
    }
  }
  auto field = [&](const CsvRecord& r, const char* name) {
    const auto it = column.find(name);
    return it == column.end() ? std::string() : r.fields[it->second];
  };
  std::vector<Row> rows;
  for (size_t i = 1; i < records.size(); ++i) {
    const CsvRecord& r = records[i];
    const std::string where = detail::concat(o.csv.string(), ":", r.line);
    if (r.fields.size() != records[0].fields.size()) {
      throw InputError(
          detail::concat(where, ": ", r.fields.size(), " fields, the header has ", records[0].fields.size()));
    }
    Row row;
    const fs::path path = field(r, "path");
    if (path.empty() || field(r, "class").empty() || field(r, "bias").empty()) {
      throw InputError(where + ": path, class and bias must not be empty");
    }
    row.image = path.is_absolute() ? path : o.csv.parent_path() / path;
    row.klass = field(r, "class");
    row.bias = field(r, "bias");
    row.prompt = field(r, "prompt");
    row.generator = field(r, "generator");
    row.prompt_kind = field(r, "prompt_kind");
    row.where = where;
    if (column.count("split")) {
      row.split = parse_split(field(r, "split"));
      if (!row.split) throw InputError(where + ": split '" + field(r, "split") + "' (expected train, val or test)");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

ImportResult import_synthetic(const SyntheticImport& o, const ImportCommon& common) {
  if (o.root.empty() == o.csv.empty()) throw InputError("import synthetic: give either --root (folders) or --csv");
  if (o.prompt_kind != "aware" && o.prompt_kind != "agnostic") {
    throw InputError("--prompt-kind: expected aware or agnostic, got '" + o.prompt_kind + "'");
  }
  const std::vector<Row> rows = o.csv.empty() ? rows_from_folders(o) : rows_from_csv(o);
  std::set<std::string> classes, biases;
  for (const Row& row : rows) classes.insert(row.klass), biases.insert(row.bias);
  const Names class_names = names_from(o.like, classes, true), bias_names = names_from(o.like, biases, false);

  ImportResult r;
  Manifest& m = r.manifest;
  m.info.class_names = class_names.names;
  m.info.bias_names = bias_names.names;
  bool any_split = false, all_split = true;
  for (const Row& row : rows) {
    Sample s;
    s.path = path_for_manifest(row.image, common.out);
    s.y = class_names.index(row.klass, row.where, "class");
    s.b = bias_names.index(row.bias, row.where, "bias");
    s.source = Source::Synthetic;
    s.prompt = row.prompt;
    s.generator = row.generator;
    const std::string kind = row.prompt_kind.empty() ? o.prompt_kind : row.prompt_kind;
    if (kind != "aware" && kind != "agnostic") {
      throw InputError(row.where + ": prompt_kind '" + kind + "' (expected aware, agnostic or empty)");
    }
    s.prompt_kind = kind == "agnostic" ? PromptKind::Agnostic : PromptKind::Aware;
    if (row.split) s.split = *row.split;
    any_split |= row.split.has_value();
    all_split &= row.split.has_value();
    m.samples.push_back(std::move(s));
  }
  if (!any_split) assign_seeded_split(m.samples, common.fractions, common.seed);
  if (any_split && !all_split) throw InputError(o.csv.string() + ": some rows have a split and some do not");
  finish_manifest(m, common);
  return r;
}

}  // namespace ffr::data
