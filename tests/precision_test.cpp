// The precision setting (engine/precision.h): names, defaults per device, and the switches it sets.
#include "engine/precision.h"

#include "engine/error.h"

#include <gtest/gtest.h>

namespace ffr {
namespace {

TEST(Precision, NamesRoundTrip) {
  for (Precision p : {Precision::Float32, Precision::TensorFloat32, Precision::BFloat16}) {
    EXPECT_EQ(parse_precision(precision_name(p)), p);
    EXPECT_EQ(resolve_precision(precision_name(p), Device::cpu()), p);
  }
}

TEST(Precision, UnknownNameListsTheChoices) {
  for (const char* bad : {"fp16", "FP32", "", "bfloat16"}) {
    try {
      parse_precision(bad);
      FAIL() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("fp32, tf32 or bf16"), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos) << what;
    }
  }
  EXPECT_THROW(resolve_precision("fast", Device::cpu()), InputError);
}

TEST(Precision, DefaultIsTf32OnCudaAndFp32OnTheCpu) {
  EXPECT_EQ(default_precision(Device::cuda(0)), Precision::TensorFloat32);
  EXPECT_EQ(default_precision(Device::cpu()), Precision::Float32);
  EXPECT_EQ(resolve_precision("auto", Device::cuda(0)), Precision::TensorFloat32);
  EXPECT_EQ(resolve_precision("auto", Device::cpu()), Precision::Float32);
}

TEST(Precision, ScopeSetsTheSwitchesAndRestoresThem) {
  Settings base;
  base.deterministic = true;
  SettingsScope outer(base);
  {
    PrecisionScope tf32(Precision::TensorFloat32);
    EXPECT_TRUE(settings().allow_tf32);
    EXPECT_FALSE(settings().bfloat16_compute);
    EXPECT_TRUE(settings().deterministic) << "other settings kept";
    EXPECT_EQ(precision_of(settings()), Precision::TensorFloat32);
    {
      PrecisionScope bf16(Precision::BFloat16);
      EXPECT_FALSE(settings().allow_tf32);
      EXPECT_TRUE(settings().bfloat16_compute);
      EXPECT_EQ(precision_of(settings()), Precision::BFloat16);
    }
    EXPECT_EQ(precision_of(settings()), Precision::TensorFloat32);
  }
  EXPECT_EQ(precision_of(settings()), Precision::Float32);
  EXPECT_TRUE(settings().deterministic);
}

}  // namespace
}  // namespace ffr
