// Joins a real manifest (an import of CelebA, UTKFace, SpuCo Animals, Waterbirds ...) and a
// synthetic one (`import synthetic`) into the one manifest the FFR protocol reads. Both must name
// the same classes and bias values in the same order; the real sidecar's image_size and
// majority_bias are kept, the groups are the union. Paths are rewritten relative to the output.
#pragma once

#include "data/import/imported_manifest.h"

namespace ffr::data {

struct MergeImport {
  std::filesystem::path real, synthetic;  // manifest CSVs (sidecars beside them)
};

// Throws InputError naming both files when their class or bias names differ, or when the real
// one holds synthetic samples or the synthetic one real samples.
ImportResult merge_manifests(const MergeImport& options, const ImportCommon& common);

}  // namespace ffr::data
