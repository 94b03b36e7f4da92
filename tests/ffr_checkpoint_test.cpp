// A checkpoint scored on a data set must be scored on the classes it was trained for: a class
// count that matches by chance is not enough (issue 17, item 5).
#include "data_test_support.h"
#include "ffr/checkpoint.h"

#include <gtest/gtest.h>

namespace ffr {
namespace {

using data::testing::expect_input_error;

CheckpointInfo info_with_names(const std::string& names_json) {
  CheckpointInfo info{"resnet_tiny", 2, 16, {}};
  if (!names_json.empty()) info.extra["class_names"] = names_json;
  return info;
}

TEST(FfrCheckpointClasses, OtherClassNamesOfTheSameCountAreRefusedListingBoth) {
  const CheckpointInfo info = info_with_names(R"(["cat","dog"])");
  expect_input_error([&] { check_checkpoint_classes(info, "best.safetensors", {"car", "truck"}, "m.csv", false); },
                     {"best.safetensors", "m.csv", "cat, dog", "car, truck", "--ignore-class-names"});
  // The same names in another order are other classes too: label 0 would mean something else.
  expect_input_error([&] { check_checkpoint_classes(info, "best.safetensors", {"dog", "cat"}, "m.csv", false); },
                     {"cat, dog", "dog, cat"});
  EXPECT_NO_THROW(check_checkpoint_classes(info, "best.safetensors", {"cat", "dog"}, "m.csv", false));
  EXPECT_NO_THROW(check_checkpoint_classes(info, "best.safetensors", {"car", "truck"}, "m.csv", true));
}

TEST(FfrCheckpointClasses, CountIsCheckedAlwaysAndNamesWhenRecorded) {
  expect_input_error(
      [&] { check_checkpoint_classes(info_with_names(""), "best.safetensors", {"a", "b", "c"}, "m.csv", true); },
      {"m.csv", "3 classes", "2"});
  // An older checkpoint without class names: only the count can be checked.
  EXPECT_NO_THROW(check_checkpoint_classes(info_with_names(""), "best.safetensors", {"a", "b"}, "m.csv", false));
  expect_input_error([&] { check_checkpoint_classes(info_with_names("[1,2]"), "best.safetensors", {"a", "b"}, "m.csv", false); },
                     {"best.safetensors", "class_names"});
}

}  // namespace
}  // namespace ffr
