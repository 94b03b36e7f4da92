// engine/build_info.h: the provenance block every result carries.
#include "engine/build_info.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

namespace ffr {
namespace {

TEST(BuildInfo, NamesVersionCommitBuildTypeAndLibraries) {
  const BuildInfo& b = build_info();
  EXPECT_TRUE(std::regex_match(b.version, std::regex("[0-9]+\\.[0-9]+\\.[0-9]+"))) << b.version;
  // A git checkout gives the commit (and "-dirty" with local changes); a tarball "unknown".
  EXPECT_TRUE(std::regex_match(b.git_commit, std::regex("[0-9a-f]{40}(-dirty)?|unknown"))) << b.git_commit;
  EXPECT_FALSE(b.build_type.empty());
  EXPECT_FALSE(b.compiler.empty());
  EXPECT_NE(b.openblas.find("OpenBLAS"), std::string::npos) << b.openblas;
#if FFR_WITH_CUDA
  EXPECT_TRUE(std::regex_search(b.cuda, std::regex("^[0-9]+\\.[0-9]+"))) << b.cuda;
  EXPECT_TRUE(std::regex_match(b.cudnn, std::regex("[0-9]+\\.[0-9]+\\.[0-9]+"))) << b.cudnn;
  EXPECT_TRUE(std::regex_match(b.cublas, std::regex("[0-9]+\\.[0-9]+\\.[0-9]+"))) << b.cublas;
#else
  EXPECT_EQ(b.cuda, "none");
  EXPECT_EQ(b.cudnn, "none");
  EXPECT_EQ(b.cublas, "none");
#endif
}

TEST(BuildInfo, JsonAndTextHoldTheSameFields) {
  const nlohmann::json j = nlohmann::json::parse(build_info_json());
  const auto fields = build_info_fields();
  ASSERT_EQ(j.size(), fields.size());
  for (const auto& [key, value] : fields) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j[key].get<std::string>(), value) << key;
  }
  const std::string text = build_info_text();
  EXPECT_NE(text.find("commit " + build_info().git_commit), std::string::npos) << text;
  EXPECT_NE(text.find("cuDNN"), std::string::npos) << text;
  EXPECT_EQ(build_info_json(), build_info_json());  // constant within a build
}

}  // namespace
}  // namespace ffr
