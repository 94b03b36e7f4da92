// SpuCo Animals (Joshi et al. 2023, the `spuco` package; ImageNet images of four classes, each
// spuriously tied to a background), in the folder layout the package downloads and reads:
//   ROOT/spuco_birds/{train,val,test}/{landbirds,waterbirds}/{land,water}/<image>
//   ROOT/spuco_dogs/{train,val,test}/{small_dogs,big_dogs}/{indoor,outdoor}/<image>
// i.e. every image sits in <split>/<class>/<background>/. Our assumption, from the package's
// loaders (spuco/datasets/spuco_birds.py, spuco_dogs.py), is that the folders hold these names;
// "valid" is read as val too. A copy without split folders (<class>/<background>/<image>) gets a
// seeded per-group split. The package itself keeps only the first N images of each majority
// group (10000 train); this import keeps every image and lets the protocol's bias ratio subsample.
//
// Classes and backgrounds in the paper's order: y = small_dogs, big_dogs, landbirds, waterbirds;
// b = indoor, outdoor, land, water. Only the 8 groups the layout holds are declared.
#pragma once

#include "data/import/imported_manifest.h"

namespace ffr::data {

struct SpucoAnimalsImport {
  std::filesystem::path root;
};

ImportResult import_spuco_animals(const SpucoAnimalsImport& options, const ImportCommon& common);

}  // namespace ffr::data
