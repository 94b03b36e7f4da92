// What every importer (data/import/<kind>.cpp) shares: turning a list of labelled image files into
// a Manifest beside its output path (paths relative to the manifest's folder, images never
// copied), a seeded per-group split for archives that ship none, and the final write.
#pragma once

#include "data/manifest.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ffr::data {

// Split shares for archives without an official split (UTKFace, a SpuCo copy without split
// folders, a folder of generated images). train = 1 - val - test.
struct SplitFractions {
  double val = 0.1;
  double test = 0.2;
};

// What an importer hands back: the manifest (csv_path set, not yet written) and the warnings it
// has for the user (one line each, e.g. the files whose names did not parse).
struct ImportResult {
  Manifest manifest;
  std::vector<std::string> warnings;
};

// Options every importer takes.
struct ImportCommon {
  std::filesystem::path out;  // the manifest CSV to write (its sidecar goes beside it)
  int image_size = 0;         // sidecar image_size; 0: the first image's width
  SplitFractions fractions;   // where the archive has no split
  uint64_t seed = 0;          // of that split
};

// Throws InputError naming the flag when a share is outside [0, 1) or they leave nothing to train.
void check_split_fractions(const SplitFractions& fractions);

// Assigns a split to every sample, per (y, b) group: each group's samples are shuffled with
// `seed` and round(n * val) go to val, round(n * test) to test, the rest to train, so rare groups
// reach every split in proportion.
void assign_seeded_split(std::vector<Sample>& samples, const SplitFractions& fractions, uint64_t seed);

// The CSV's spelling of `image`: relative to the folder of `manifest_csv` (both made absolute).
std::string path_for_manifest(const std::filesystem::path& image, const std::filesystem::path& manifest_csv);

// The image files under `folder` (recursively, .jpg/.jpeg/.png in any case), sorted by path.
std::vector<std::filesystem::path> list_images(const std::filesystem::path& folder);

// Finishes `manifest`: csv_path and root from common.out, groups = the (y, b) pairs that occur
// (in (y, b) order), image_size from common or the first image's header; then validates it.
void finish_manifest(Manifest& manifest, const ImportCommon& common);

// Writes the manifest and its sidecar, each atomically (temp file, fsync, rename), creating the
// output folder if needed.
void write_imported_manifest(const Manifest& manifest);

}  // namespace ffr::data
