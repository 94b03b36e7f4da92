// ffr-bench subcommands register themselves here, so adding a command touches its own file only.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace ffr::bench {

// `setup` adds the subcommand's options to `sub` and its callback (which does the work).
struct Command {
  std::string name;
  std::string description;
  std::function<void(CLI::App& sub)> setup;
};

std::vector<Command>& commands();

// Use at namespace scope in a command's file:
//   static const bool registered = register_command({"prepare", "...", setup_prepare});
bool register_command(Command command);

}  // namespace ffr::bench
