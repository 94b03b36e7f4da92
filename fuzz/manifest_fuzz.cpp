// libFuzzer target for the manifest reader: the CSV parser, the JSON sidecar parser and the
// manifest built from both (see fuzz/README.md for the build line).
//
// The input is split at its first NUL byte: what comes before is the CSV text, what follows is
// the sidecar's JSON text. Without a NUL, the whole input is the CSV and the sidecar is a fixed
// valid one, so most mutations reach the manifest checks behind the CSV parser.
//
// The contract under test: any input either parses, or is refused with ffr::InputError.
// Anything else (a crash, a sanitizer report, another exception type, a broken invariant
// checked below) is a bug. Only InputError is caught, so every other exception aborts the run.
#include "data/csv.h"
#include "data/image.h"
#include "data/manifest.h"
#include "engine/error.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace ffr::data;

const char* const kSidecar =
    R"({"class_names": ["cat", "dog"], "bias_names": ["indoor", "outdoor"],)"
    R"( "groups": [[0, 0], [0, 1], [1, 0], [1, 1]], "image_size": 28})";

void check(bool ok) {
  if (!ok) std::abort();
}

// parse_csv, and the writer's promise: csv_line() of every parsed record parses back to the
// same fields.
void fuzz_csv(const std::string& text) {
  std::vector<CsvRecord> records;
  try {
    records = parse_csv(text, "fuzz.csv");
  } catch (const ffr::InputError&) {
    return;
  }
  std::string written;
  int previous_line = 0;
  for (const CsvRecord& r : records) {
    check(!r.fields.empty() && r.line > previous_line);  // lines count up from 1
    previous_line = r.line;
    written += csv_line(r.fields);
  }
  const std::vector<CsvRecord> back = parse_csv(written, "written.csv");  // must not throw
  check(back.size() == records.size());
  for (size_t i = 0; i < back.size(); ++i) check(back[i].fields == records[i].fields);
}

void fuzz_sidecar(const std::string& text) {
  try {
    const DatasetInfo info = parse_dataset_info(text, "fuzz.json");
    check(info.num_classes() > 0 && info.num_biases() > 0 && !info.groups.empty());
    check(info.image_size > 0 && info.image_size <= kMaxImageSide);
    for (const auto& [y, b] : info.groups) {
      check(y >= 0 && y < info.num_classes() && b >= 0 && b < info.num_biases());
    }
    check(info.majority_bias.empty() || int(info.majority_bias.size()) == info.num_classes());
    for (size_t y = 0; y < info.majority_bias.size(); ++y) check(info.has_group(int(y), info.majority_bias[y]));
  } catch (const ffr::InputError&) {
  }
}

void fuzz_manifest(const std::string& csv, const std::string& json) {
  try {
    const Manifest m = parse_manifest_text(csv, json, "fuzz/m.csv");
    check(!m.samples.empty());
    validate_manifest(m);  // what write_manifest checks: must hold for anything read
    for (size_t i = 0; i < m.samples.size(); ++i) {
      const Sample& s = m.samples[i];
      check(!s.path.empty() && m.info.has_group(s.y, s.b) && s.line > 0);
      check(!m.where(i).empty() && !m.image_path(i).empty());
    }
  } catch (const ffr::InputError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t separator = input.find('\0');
  const std::string csv = input.substr(0, separator);
  const std::string json = separator == std::string::npos ? kSidecar : input.substr(separator + 1);
  fuzz_csv(csv);
  fuzz_sidecar(json);
  fuzz_manifest(csv, json);
  return 0;
}
