#include "data/manifest.h"

#include "data/csv.h"
#include "data/image.h"
#include "engine/atomic_file.h"
#include "engine/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <map>

namespace fs = std::filesystem;
using nlohmann::json;

namespace ffr::data {

const char* split_name(Split split) {
  switch (split) {
    case Split::Train: return "train";
    case Split::Val: return "val";
    case Split::Test: return "test";
  }
  return "?";
}

const char* source_name(Source source) { return source == Source::Real ? "real" : "synthetic"; }
const char* prompt_kind_name(PromptKind kind) { return kind == PromptKind::Aware ? "aware" : "agnostic"; }

bool DatasetInfo::has_group(int y, int b) const {
  return std::find(groups.begin(), groups.end(), std::make_pair(y, b)) != groups.end();
}

fs::path Manifest::image_path(size_t i) const {
  const fs::path p(samples[i].path);
  return p.is_absolute() ? p : root / p;
}

std::string Manifest::where(size_t i) const {
  return detail::concat(csv_path.string(), ":", samples[i].line);
}

fs::path sidecar_path(const fs::path& csv_path) {
  fs::path json_path = csv_path;
  json_path.replace_extension(".json");
  return json_path;
}

namespace {

std::string read_text_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(detail::concat(path.string(), ": is a folder, expected a file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(detail::concat(path.string(), ": cannot open: ", std::strerror(errno)));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int line_of_byte(const std::string& text, size_t byte) {
  byte = std::min(byte, text.size());
  return 1 + int(std::count(text.begin(), text.begin() + byte, '\n'));
}

// The JSON integer `v` as an int, or nothing when it is not an integer or does not fit (a
// plain get<int>() would wrap 4294967296 to 0).
std::optional<int> as_int(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u <= uint64_t(std::numeric_limits<int>::max())) return int(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (i >= std::numeric_limits<int>::min() && i <= std::numeric_limits<int>::max()) return int(i);
  }
  return std::nullopt;
}

// A short rendering of a JSON value for error messages: at most two levels deep and about 60
// characters per level (json::dump recurses, so dumping a deeply nested value from a hostile
// file would overflow the stack, and a long one would flood the message).
std::string brief(const json& v, int depth = 0) {
  if (!v.is_structured()) {
    std::string text = v.dump();
    return text.size() > 60 ? text.substr(0, 57) + "..." : text;
  }
  if (depth >= 2) return v.is_array() ? "[...]" : "{...}";
  std::string out = v.is_array() ? "[" : "{";
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!first) out += ", ";
    first = false;
    if (out.size() > 60) {
      out += "...";
      break;
    }
    if (v.is_object()) out += json(it.key()).dump() + ": ";
    out += brief(*it, depth + 1);
  }
  out += v.is_array() ? "]" : "}";
  return out;
}

std::vector<std::string> string_list(const json& doc, const char* key, const std::string& file) {
  if (!doc.contains(key) || !doc[key].is_array() || doc[key].empty()) {
    throw InputError(detail::concat(file, ": '", key, "' must be a non-empty list of names"));
  }
  std::vector<std::string> names;
  for (const auto& v : doc[key]) {
    if (!v.is_string()) throw InputError(detail::concat(file, ": '", key, "' must hold strings"));
    names.push_back(v.get<std::string>());
  }
  return names;
}

}  // namespace

DatasetInfo read_dataset_info(const fs::path& json_path) {
  const std::string file = json_path.string();
  std::error_code ec;
  if (!fs::exists(json_path, ec)) {
    throw InputError(detail::concat(file, ": JSON sidecar not found (it must sit beside the manifest, "
                                    "same name, .json)"));
  }
  return parse_dataset_info(read_text_file(json_path), file);
}

DatasetInfo parse_dataset_info(const std::string& text, const std::string& file) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(detail::concat(file, ":", line_of_byte(text, e.byte), ": invalid JSON: ", e.what()));
  } catch (const json::exception& e) {  // e.g. out_of_range for a number like 1e999
    throw InputError(detail::concat(file, ": invalid JSON: ", e.what()));
  }
  if (!doc.is_object()) throw InputError(detail::concat(file, ": expected a JSON object"));

  DatasetInfo info;
  info.class_names = string_list(doc, "class_names", file);
  info.bias_names = string_list(doc, "bias_names", file);

  if (!doc.contains("groups") || !doc["groups"].is_array() || doc["groups"].empty()) {
    throw InputError(detail::concat(file, ": 'groups' must be a non-empty list of [y, b] pairs"));
  }
  for (const auto& g : doc["groups"]) {
    const std::optional<int> gy = g.is_array() && g.size() == 2 ? as_int(g[0]) : std::nullopt;
    const std::optional<int> gb = g.is_array() && g.size() == 2 ? as_int(g[1]) : std::nullopt;
    if (!gy || !gb) {
      throw InputError(detail::concat(file, ": 'groups' must be a list of [y, b] integer pairs, found ",
                                      brief(g)));
    }
    const int y = *gy, b = *gb;
    if (y < 0 || y >= info.num_classes() || b < 0 || b >= info.num_biases()) {
      throw InputError(detail::concat(file, ": group [", y, ", ", b, "] is outside ",
                                      info.num_classes(), " classes x ", info.num_biases(), " biases"));
    }
    if (info.has_group(y, b)) {
      throw InputError(detail::concat(file, ": group [", y, ", ", b, "] is declared twice"));
    }
    info.groups.emplace_back(y, b);
  }

  const std::optional<int> image_size = doc.contains("image_size") ? as_int(doc["image_size"]) : std::nullopt;
  if (!image_size || *image_size <= 0 || *image_size > kMaxImageSide) {
    throw InputError(detail::concat(file, ": 'image_size' must be a positive integer (at most ", kMaxImageSide, ")"));
  }
  info.image_size = *image_size;

  if (doc.contains("majority_bias")) {
    const auto& m = doc["majority_bias"];
    if (!m.is_array() || int(m.size()) != info.num_classes()) {
      throw InputError(detail::concat(file, ": 'majority_bias' must list one bias per class"));
    }
    for (size_t y = 0; y < m.size(); ++y) {
      const std::optional<int> b = as_int(m[y]);
      if (!b || !info.has_group(int(y), *b)) {
        throw InputError(detail::concat(file, ": 'majority_bias'[", y, "] must be a declared b of class ", y));
      }
      info.majority_bias.push_back(*b);
    }
  }
  return info;
}

namespace {

int parse_label(const std::string& text, const char* column, const std::string& where) {
  int value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  const auto [end, err] = std::from_chars(first, last, value);
  if (text.empty() || err != std::errc() || end != last) {
    throw InputError(detail::concat(where, ": ", column, " must be an integer, found '", text, "'"));
  }
  return value;
}

Split parse_split(const std::string& text, const std::string& where) {
  if (text == "train") return Split::Train;
  if (text == "val") return Split::Val;
  if (text == "test") return Split::Test;
  throw InputError(detail::concat(where, ": unknown split '", text, "' (expected train, val or test)"));
}

Source parse_source(const std::string& text, const std::string& where) {
  if (text == "real") return Source::Real;
  if (text == "synthetic") return Source::Synthetic;
  throw InputError(detail::concat(where, ": unknown source '", text, "' (expected real or synthetic)"));
}

PromptKind parse_prompt_kind(const std::string& text, Source source, const std::string& where) {
  if (text.empty() || text == "aware") return PromptKind::Aware;
  if (text != "agnostic") {
    throw InputError(detail::concat(where, ": unknown prompt_kind '", text, "' (expected aware, agnostic or empty)"));
  }
  if (source != Source::Synthetic) {
    throw InputError(detail::concat(where, ": prompt_kind 'agnostic' on a real image (it marks synthetic images "
                                           "generated from a class-only prompt)"));
  }
  return PromptKind::Agnostic;
}

}  // namespace

void validate_manifest(const Manifest& manifest) {
  const DatasetInfo& info = manifest.info;
  const std::string json_file = sidecar_path(manifest.csv_path).string();
  for (size_t i = 0; i < manifest.samples.size(); ++i) {
    const Sample& s = manifest.samples[i];
    if (s.path.empty()) throw InputError(detail::concat(manifest.where(i), ": empty path"));
    if (s.y < 0 || s.y >= info.num_classes()) {
      throw InputError(detail::concat(manifest.where(i), ": y=", s.y, " out of range (", json_file,
                                      " declares ", info.num_classes(), " classes: 0..",
                                      info.num_classes() - 1, ")"));
    }
    if (s.b < 0 || s.b >= info.num_biases()) {
      throw InputError(detail::concat(manifest.where(i), ": b=", s.b, " out of range (", json_file,
                                      " declares ", info.num_biases(), " bias values: 0..",
                                      info.num_biases() - 1, ")"));
    }
    if (!info.has_group(s.y, s.b)) {
      throw InputError(detail::concat(manifest.where(i), ": group (y=", s.y, ", b=", s.b,
                                      ") is not declared in the 'groups' of ", json_file));
    }
  }
}

namespace {

// The manifest from CSV text; `read_info` supplies the sidecar, asked for only once the CSV has
// parsed (so read_manifest reports a broken CSV before a missing sidecar, as it always has).
Manifest parse_manifest(const std::string& text, const fs::path& csv_path, const std::optional<fs::path>& root,
                        const std::function<DatasetInfo()>& read_info) {
  const std::string file = csv_path.string();
  const std::vector<CsvRecord> records = parse_csv(text, file);
  if (records.empty()) {
    throw InputError(detail::concat(file, ": empty file (expected a header row: path,split,y,b,source)"));
  }

  Manifest manifest;
  manifest.csv_path = csv_path;
  manifest.root = root ? *root : (csv_path.has_parent_path() ? csv_path.parent_path() : fs::path("."));
  manifest.info = read_info();

  // Header: required columns anywhere, optional ones if present, unknown ones ignored.
  const CsvRecord& header = records.front();
  std::map<std::string, size_t> column;
  for (size_t c = 0; c < header.fields.size(); ++c) {
    if (!column.emplace(header.fields[c], c).second) {
      throw InputError(detail::concat(file, ":", header.line, ": column '", header.fields[c],
                                      "' appears twice in the header"));
    }
  }
  for (const char* required : {"path", "split", "y", "b", "source"}) {
    if (!column.count(required)) {
      throw InputError(detail::concat(file, ":", header.line, ": missing required column '", required,
                                      "' (the header needs path,split,y,b,source)"));
    }
  }
  auto optional_column = [&](const char* name) -> long {
    auto it = column.find(name);
    return it == column.end() ? -1 : long(it->second);
  };
  const long orig_id = optional_column("orig_id"), generator = optional_column("generator"),
             prompt = optional_column("prompt"), prompt_kind = optional_column("prompt_kind");

  manifest.samples.reserve(records.size() - 1);
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    const std::string where = detail::concat(file, ":", rec.line);
    if (rec.fields.size() != header.fields.size()) {
      throw InputError(detail::concat(where, ": expected ", header.fields.size(), " fields (as the header), found ",
                                      rec.fields.size()));
    }
    Sample s;
    s.line = rec.line;
    s.path = rec.fields[column["path"]];
    s.split = parse_split(rec.fields[column["split"]], where);
    s.y = parse_label(rec.fields[column["y"]], "y", where);
    s.b = parse_label(rec.fields[column["b"]], "b", where);
    s.source = parse_source(rec.fields[column["source"]], where);
    if (orig_id >= 0) s.orig_id = rec.fields[size_t(orig_id)];
    if (generator >= 0) s.generator = rec.fields[size_t(generator)];
    if (prompt >= 0) s.prompt = rec.fields[size_t(prompt)];
    if (prompt_kind >= 0) s.prompt_kind = parse_prompt_kind(rec.fields[size_t(prompt_kind)], s.source, where);
    manifest.samples.push_back(std::move(s));
  }
  if (manifest.samples.empty()) {
    throw InputError(detail::concat(file, ": no samples (only a header row)"));
  }
  validate_manifest(manifest);
  return manifest;
}

}  // namespace

Manifest read_manifest(const fs::path& csv_path, const std::optional<fs::path>& root) {
  std::error_code ec;
  if (!fs::exists(csv_path, ec)) throw InputError(detail::concat(csv_path.string(), ": manifest not found"));
  return parse_manifest(read_text_file(csv_path), csv_path, root,
                        [&] { return read_dataset_info(sidecar_path(csv_path)); });
}

Manifest parse_manifest_text(const std::string& csv_text, const std::string& json_text, const fs::path& csv_path,
                             const std::optional<fs::path>& root) {
  return parse_manifest(csv_text, csv_path, root,
                        [&] { return parse_dataset_info(json_text, sidecar_path(csv_path).string()); });
}

void write_manifest(const Manifest& manifest) {
  FFR_CHECK(!manifest.csv_path.empty(), "write_manifest: csv_path is empty");
  validate_manifest(manifest);
  bool has_orig_id = false, has_generator = false, has_prompt = false, has_prompt_kind = false;
  for (const Sample& s : manifest.samples) {
    FFR_CHECK(s.prompt_kind == PromptKind::Aware || s.source == Source::Synthetic,
              "write_manifest: a real image marked prompt_kind agnostic: ", s.path);
    has_prompt_kind |= s.prompt_kind != PromptKind::Aware;
    has_orig_id |= !s.orig_id.empty();
    has_generator |= !s.generator.empty();
    has_prompt |= !s.prompt.empty();
  }
  std::vector<std::string> header = {"path", "split", "y", "b", "source"};
  if (has_orig_id) header.push_back("orig_id");
  if (has_generator) header.push_back("generator");
  if (has_prompt) header.push_back("prompt");
  if (has_prompt_kind) header.push_back("prompt_kind");

  std::string csv = csv_line(header);
  std::vector<std::string> row;
  for (const Sample& s : manifest.samples) {
    row = {s.path, split_name(s.split), std::to_string(s.y), std::to_string(s.b), source_name(s.source)};
    if (has_orig_id) row.push_back(s.orig_id);
    if (has_generator) row.push_back(s.generator);
    if (has_prompt) row.push_back(s.prompt);
    if (has_prompt_kind) row.push_back(prompt_kind_name(s.prompt_kind));
    csv += csv_line(row);
  }

  const DatasetInfo& info = manifest.info;
  json doc;
  doc["class_names"] = info.class_names;
  doc["bias_names"] = info.bias_names;
  json groups = json::array();
  for (const auto& [y, b] : info.groups) groups.push_back({y, b});
  doc["groups"] = groups;
  doc["image_size"] = info.image_size;
  if (!info.majority_bias.empty()) doc["majority_bias"] = info.majority_bias;

  // Sidecar first: a reader that finds the CSV also finds a sidecar that matches it.
  write_text_atomically(sidecar_path(manifest.csv_path).string(), doc.dump(2) + "\n");
  write_text_atomically(manifest.csv_path.string(), csv);
}

}  // namespace ffr::data
