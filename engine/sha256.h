// SHA-256 (FIPS 180-4), small and dependency-free: the content hash that ties a run folder to the
// exact data it was trained on and the --init weights it started from (ffr/experiment.h), so a data
// set or weights file rebuilt at the same path is noticed. Known-answer tests in tests/sha256_test.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ffr {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  // The digest as 64 lowercase hex digits. Ends the hash: call once.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t length_ = 0;  // bytes hashed so far
};

std::string sha256_hex(const std::string& data);
// Hashes a file in pieces; InputError naming the file when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace ffr
