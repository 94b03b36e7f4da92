// SHA-256 (FIPS 180-4): the fingerprint a run records of the files it depends on (an --init
// weights file), so a resumed or repeated run can tell that a file changed under it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ffr {

// Incremental hashing: update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  // The 64 lower-case hex digits of the digest. Finalises: call once.
  std::string hex_digest();

 private:
  void compress(const uint8_t block[64]);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const std::string& bytes);
// The digest of a whole file, read in chunks. Throws InputError naming the file if unreadable.
std::string sha256_file_hex(const std::string& path);

}  // namespace ffr
