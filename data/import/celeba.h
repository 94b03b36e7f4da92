// CelebA and CelebA-HQ from their official files (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html):
//   list_attr_celeba.txt     line 1: the image count; line 2: the 40 attribute names;
//                            then "000001.jpg  -1  1 ..." (one value, -1 or 1, per attribute)
//   list_eval_partition.txt  "000001.jpg 0" (0 train, 1 val, 2 test)
//   img_align_celeba/        the images, named as in those lists
// CelebA-HQ (the paper's data set) adds CelebA-HQ-to-CelebA-mapping.txt ("idx orig_idx orig_file"
// after a header line) and its images named "<idx>.jpg" (CelebAMask-HQ's CelebA-HQ-img/): each
// HQ image takes the attributes and split of the CelebA image it was made from.
//
// y is the target attribute (1 when present), b the bias attribute; the paper's choice is
// target Smiling, bias Male (its "Gender"). Class names are "not_<attr>" and "<attr>".
#pragma once

#include "data/import/imported_manifest.h"

namespace ffr::data {

struct CelebaImport {
  std::filesystem::path root;        // holds the two list files (and by default the images)
  std::filesystem::path images;      // default: root/img_align_celeba, or root/CelebA-HQ-img with hq_mapping
  std::filesystem::path hq_mapping;  // CelebA-HQ-to-CelebA-mapping.txt: import CelebA-HQ instead
  std::string target = "Smiling";
  std::string bias = "Male";
};

// Throws InputError naming the file and line for a malformed list, an unknown attribute or an
// image the partition file does not place.
ImportResult import_celeba(const CelebaImport& options, const ImportCommon& common);

}  // namespace ffr::data
