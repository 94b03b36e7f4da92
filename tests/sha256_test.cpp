// SHA-256 against the FIPS 180-4 / NIST example digests, fed whole and in odd-sized pieces.
#include "engine/sha256.h"

#include "data_test_support.h"
#include "engine/error.h"

#include <gtest/gtest.h>

namespace ffr {
namespace {

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the padding spills into a second block.
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PiecewiseEqualsWhole) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += char('a' + i % 26);
  for (size_t piece : {1u, 7u, 63u, 64u, 65u, 999u}) {
    Sha256 hash;
    for (size_t at = 0; at < text.size(); at += piece) hash.update(text.data() + at, std::min(piece, text.size() - at));
    EXPECT_EQ(hash.hex_digest(), sha256_hex(text)) << "pieces of " << piece;
  }
}

TEST(Sha256, FileDigestAndMissingFile) {
  data::testing::TempDir dir;
  data::testing::write_file(dir / "a.bin", "abc");
  EXPECT_EQ(sha256_file_hex((dir / "a.bin").string()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  data::testing::expect_input_error([&] { sha256_file_hex((dir / "none.bin").string()); }, {"none.bin", "cannot read"});
}

}  // namespace
}  // namespace ffr
