// ffr-bench subcommands register themselves here, so adding a command touches its own file only.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ffr::bench {

// Exit codes (README.md, "Exit codes"): the same for parser and runtime errors.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntimeError = 1;   // the work failed: bad data, I/O, numerics, device
inline constexpr int kExitUsageError = 2;     // the command line: unknown flag, bad value, conflict
inline constexpr int kExitInterrupted = 130;  // Ctrl-C (128 + SIGINT)

// A command-line problem found after parsing (flags that conflict, or do not apply to the chosen
// method): exit code 2, as CLI11's own parse errors. Messages start with the flag.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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
