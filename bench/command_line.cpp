#include "bench/command_line.h"

#include "engine/error.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace ffr::bench {

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  FFR_CHECK(!text.empty(), "cannot read /proc/self/cmdline");
  std::vector<std::string> args;
  size_t from = 0;
  for (size_t at = text.find('\0'); at != std::string::npos; from = at + 1, at = text.find('\0', from)) {
    args.push_back(text.substr(from, at - from));
  }
  if (from < text.size()) args.push_back(text.substr(from));
  return args;
}

std::string own_executable() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

std::vector<std::string> without_flags(const std::vector<std::string>& args, const std::vector<std::string>& with_value,
                                       const std::vector<std::string>& without_value) {
  auto listed = [](const std::vector<std::string>& flags, const std::string& word) {
    return std::find(flags.begin(), flags.end(), word) != flags.end();
  };
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (listed(without_value, a)) continue;
    if (listed(with_value, a)) {
      ++i;  // its value
      continue;
    }
    const size_t equals = a.find('=');
    if (a.rfind("--", 0) == 0 && equals != std::string::npos && listed(with_value, a.substr(0, equals))) continue;
    out.push_back(a);
  }
  return out;
}

}  // namespace ffr::bench
