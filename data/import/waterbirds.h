// Waterbirds (Sagawa et al. 2020, waterbird_complete95_forest2water2): ROOT/metadata.csv with
// columns img_id,img_filename,y,split,place,place_filename; y 0 landbird / 1 waterbird, place 0
// land / 1 water, split 0 train / 1 val / 2 test; images at ROOT/<img_filename>.
#pragma once

#include "data/import/imported_manifest.h"

namespace ffr::data {

struct WaterbirdsImport {
  std::filesystem::path root;  // holds metadata.csv and the species folders
};

// Throws InputError naming metadata.csv and the line for a missing column or a bad value.
ImportResult import_waterbirds(const WaterbirdsImport& options, const ImportCommon& common);

}  // namespace ffr::data
