#include "data/import/waterbirds.h"

#include "data/csv.h"
#include "engine/error.h"

#include <fstream>
#include <map>
#include <sstream>

namespace ffr::data {

namespace {

namespace fs = std::filesystem;

int zero_one_two(const std::string& value, int max, const std::string& where, const char* column) {
  if (value.size() == 1 && value[0] >= '0' && value[0] <= char('0' + max)) return value[0] - '0';
  throw InputError(
      detail::concat(where, ": ", column, " is '", value, "' (expected 0", max == 2 ? ", 1 or 2" : " or 1", ")"));
}

}  // namespace

ImportResult import_waterbirds(const WaterbirdsImport& o, const ImportCommon& common) {
  const fs::path file = o.root / "metadata.csv";
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string() + ": not found (expected in the Waterbirds folder given with --root)");
  std::ostringstream text;
  text << in.rdbuf();
  const std::vector<CsvRecord> records = parse_csv(text.str(), file.string());
  if (records.empty()) throw InputError(file.string() + ":1: empty file (expected a header row)");
  std::map<std::string, size_t> column;
  for (size_t k = 0; k < records[0].fields.size(); ++k) column[records[0].fields[k]] = k;
  for (const char* needed : {"img_filename", "y", "split", "place"}) {
    if (!column.count(needed)) throw InputError(file.string() + ":1: no column '" + needed + "' in the header");
  }

  ImportResult r;
  Manifest& m = r.manifest;
  m.info.class_names = {"landbird", "waterbird"};
  m.info.bias_names = {"land", "water"};
  for (size_t i = 1; i < records.size(); ++i) {
    const CsvRecord& row = records[i];
    const std::string where = detail::concat(file.string(), ":", row.line);
    if (row.fields.size() != records[0].fields.size()) {
      throw InputError(
          detail::concat(where, ": ", row.fields.size(), " fields, the header has ", records[0].fields.size()));
    }
    const std::string& name = row.fields[column["img_filename"]];
    if (name.empty()) throw InputError(where + ": empty img_filename");
    Sample s;
    s.path = path_for_manifest(o.root / name, common.out);
    s.y = zero_one_two(row.fields[column["y"]], 1, where, "y");
    s.b = zero_one_two(row.fields[column["place"]], 1, where, "place");
    const int split = zero_one_two(row.fields[column["split"]], 2, where, "split");
    s.split = split == 0 ? Split::Train : split == 1 ? Split::Val : Split::Test;
    s.orig_id = name;
    m.samples.push_back(std::move(s));
  }
  finish_manifest(m, common);
  return r;
}

}  // namespace ffr::data
