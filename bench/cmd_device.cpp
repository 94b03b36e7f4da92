// `ffr-bench device`: what the engine sees (build flags, GPU, library versions, memory).
#include "bench/command.h"
#include "engine/device.h"

#include <cstdio>

namespace ffr::bench {
namespace {

void setup_device(CLI::App& sub) {
  sub.callback([] { std::printf("%s", device_report().c_str()); });
}

const bool registered = register_command({"device", "Print the device report", setup_device});

}  // namespace
}  // namespace ffr::bench
