// Generated images (the paper's Stable Diffusion set, "A photo of {bias} {class}"), in either of
// two forms, every sample marked source=synthetic:
// - a folder with one subfolder per (class, bias) group: ROOT/<class>/<bias>/<image>;
// - a CSV with a header naming the columns path, class, bias (required) and prompt, generator,
//   split (optional); paths relative to the CSV's folder unless absolute.
// Class and bias names become indices in the order of `like` (a real manifest's sidecar, so the
// two merge: `import merge`), else in sorted order. A split column is used as given; otherwise
// a seeded per-group split (SplitFractions) holds out some images (the paper's Table 3).
#pragma once

#include "data/import/imported_manifest.h"

namespace ffr::data {

struct SyntheticImport {
  std::filesystem::path root;  // the folder form
  std::filesystem::path csv;   // the CSV form (exactly one of root and csv)
  std::filesystem::path like;  // a manifest whose class and bias names (and order) to use
  std::string generator;       // for the folder form: the generator column (e.g. "stable-diffusion-v1-4")
  // How every image was prompted (the CSV's prompt_kind column, where given, wins): agnostic for
  // class-only prompts, the paper's Table 5 pool (data/manifest.h). "aware" or "agnostic".
  std::string prompt_kind = "aware";
};

ImportResult import_synthetic(const SyntheticImport& options, const ImportCommon& common);

}  // namespace ffr::data
