#include "bench/outputs.h"

#include "bench/command.h"
#include "ffr/experiment.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace fs = std::filesystem;

namespace ffr::bench {

void ensure_writable_folder(const std::string& flag, const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw UsageError(flag + ": " + dir + " exists and is not a folder");
  }
  fs::create_directories(dir, ec);
  if (ec) throw UsageError(flag + ": cannot create the folder " + dir + ": " + ec.message());
  const std::string probe = (fs::path(dir) / (".ffr-write-test." + std::to_string(::getpid()))).string();
  std::FILE* f = std::fopen(probe.c_str(), "wb");
  if (f == nullptr) throw UsageError(flag + ": cannot write in " + dir + ": " + std::strerror(errno));
  std::fclose(f);
  fs::remove(probe, ec);
}

std::string resume_point(const std::string& run_dir) {
  const fs::path path = fs::path(run_dir) / kResumeFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  // safetensors: an 8-byte little-endian header length, then the JSON header with __metadata__.
  unsigned char size_bytes[8];
  if (!in.read(reinterpret_cast<char*>(size_bytes), 8)) return "";
  uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = (size << 8) | size_bytes[i];
  if (size == 0 || size > (uint64_t(64) << 20)) return "";
  std::string header(size, '\0');
  if (!in.read(header.data(), std::streamsize(size))) return "";
  try {
    const nlohmann::json meta = nlohmann::json::parse(header).at("__metadata__");
    const std::string stage = meta.at("stage_name").get<std::string>();
    const std::string done = meta.at("epochs_done").get<std::string>();
    return stage + ", epoch " + done + " done";
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace ffr::bench
