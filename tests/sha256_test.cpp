// SHA-256 against the FIPS 180-2 / NIST known answers, and the file form against the text form.
#include "engine/error.h"
#include "engine/sha256.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ffr {
namespace {

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths around the 55/56/64-byte padding edges, fed in one piece and in uneven chunks.
TEST(Sha256, ChunkedUpdatesEqualOneUpdate) {
  for (size_t n : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000}) {
    std::string text(n, '\0');
    for (size_t i = 0; i < n; ++i) text[i] = char(i * 31 + 7);
    Sha256 chunked;
    for (size_t at = 0, step = 1; at < n; at += step, step = step * 2 + 1) {
      chunked.update(text.data() + at, std::min(step, n - at));
    }
    EXPECT_EQ(chunked.hex_digest(), sha256_hex(text)) << n << " bytes";
  }
  EXPECT_EQ(sha256_hex(std::string(64, 'a')), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Sha256, FileEqualsItsText) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("ffr-sha256-" + std::to_string(::getpid()) + ".bin");
  const std::string text(200000, 'x');
  std::ofstream(path, std::ios::binary) << text;
  EXPECT_EQ(sha256_file_hex(path.string()), sha256_hex(text));
  std::filesystem::remove(path);
  EXPECT_THROW(sha256_file_hex(path.string()), InputError);
}

}  // namespace
}  // namespace ffr
