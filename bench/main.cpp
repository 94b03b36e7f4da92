// ffr-bench: a thin CLI over the engine library. Flags are parsed into config structs here; the
// library does the work and reports through callbacks.
#include "bench/command.h"
#include "bench/demo.h"
#include "engine/device.h"
#include "engine/error.h"

#include <cstdio>
#include <exception>

namespace ffr::bench {

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

bool register_command(Command command) {
  commands().push_back(std::move(command));
  return true;
}

}  // namespace ffr::bench

int main(int argc, char** argv) {
  CLI::App app{"ffr-bench: From-Fake-to-Real experiments on the ffr-engine"};
  app.require_subcommand(0, 1);
  for (auto& command : ffr::bench::commands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    command.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ffr-bench: error: %s\n", e.what());
    return 1;
  }
  if (app.get_subcommands().empty()) {
    // No subcommand: the default demo (DESIGN.md).
    try {
      return ffr::bench::run_demo();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ffr-bench: error: %s\n", e.what());
      return 1;
    }
  }
  return 0;
}
