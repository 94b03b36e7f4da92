#include "data/import/merge.h"

#include "engine/error.h"

#include <set>

namespace ffr::data {

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return "[" + out + "]";
}

void require_same(const std::vector<std::string>& real, const std::vector<std::string>& synthetic, const char* what,
                  const MergeImport& o) {
  if (real == synthetic) return;
  throw InputError(std::string("import merge: the ") + what + " names differ: " + sidecar_path(o.real).string() +
                   " has " + joined(real) + ", " + sidecar_path(o.synthetic).string() + " has " + joined(synthetic) +
                   " (import the synthetic set with --like " + o.real.string() + ")");
}

void require_source(const Manifest& m, Source source) {
  for (size_t i = 0; i < m.samples.size(); ++i) {
    if (m.samples[i].source != source) {
      throw InputError(m.where(i) + ": a " + source_name(m.samples[i].source) + " sample in the " +
                       source_name(source) + " manifest of import merge");
    }
  }
}

}  // namespace

ImportResult merge_manifests(const MergeImport& o, const ImportCommon& common) {
  if (o.real.empty() || o.synthetic.empty()) throw InputError("import merge: needs --real and --synthetic manifests");
  const Manifest real = read_manifest(o.real);
  const Manifest synthetic = read_manifest(o.synthetic);
  require_same(real.info.class_names, synthetic.info.class_names, "class", o);
  require_same(real.info.bias_names, synthetic.info.bias_names, "bias", o);
  require_source(real, Source::Real);
  require_source(synthetic, Source::Synthetic);

  ImportResult r;
  Manifest& m = r.manifest;
  m.info = real.info;
  for (const Manifest* part : {&real, &synthetic}) {
    for (size_t i = 0; i < part->samples.size(); ++i) {
      Sample s = part->samples[i];
      s.path = path_for_manifest(part->image_path(i), common.out);
      s.line = 0;
      m.samples.push_back(std::move(s));
    }
  }
  ImportCommon keep = common;
  keep.image_size = real.info.image_size;
  finish_manifest(m, keep);  // groups: the union, in (y, b) order; majority_bias stays the real one's
  return r;
}

}  // namespace ffr::data
