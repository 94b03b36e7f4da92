// ffr-bench: a thin CLI over the engine library. Flags are parsed into config structs here; the
// library does the work and reports through callbacks.
//
// Every error, whether CLI11's or the work's, is one line "ffr-bench: error: ..." on stderr, and
// the exit code says which kind it was (bench/command.h, README.md "Exit codes").
#include "bench/command.h"
#include "bench/demo.h"
#include "bench/interrupt.h"
#include "bench/openmp_waiting.h"
#include "engine/build_info.h"
#include "engine/device.h"
#include "engine/error.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <ios>
#include <new>
#include <string>
#include <vector>

namespace ffr::bench {

std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}

bool register_command(Command command) {
  commands().push_back(std::move(command));
  return true;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The candidate nearest to `word`: one that starts with it (--batch -> --batch-size), else the
// one within a few edits; "" when nothing is close.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    if (c.size() > word.size() && c.compare(0, word.size(), word) == 0 && word.size() >= 4) return c;
    const size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::vector<std::string> long_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& n : option->get_lnames()) names.push_back("--" + n);
  }
  return names;
}

// "did you mean ...?" for the first word of the command line that neither names a subcommand
// nor an option of the one chosen.
std::string suggestion(const CLI::App& app, int argc, char** argv) {
  const CLI::App* sub = nullptr;
  std::vector<std::string> command_names;
  for (const Command& c : commands()) command_names.push_back(c.name);
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (sub == nullptr && word.rfind("-", 0) != 0) {
      for (const CLI::App* s : app.get_subcommands({})) {
        if (s->get_name() == word) sub = s;
      }
      if (sub != nullptr) continue;
      const std::string near = nearest(word, command_names);
      return near.empty() ? "" : " (did you mean '" + near + "'?)";
    }
    if (word.rfind("--", 0) != 0 || word == "--") continue;
    word = word.substr(0, word.find('='));
    const CLI::App& where = sub != nullptr ? *sub : app;
    if (where.get_option_no_throw(word) != nullptr || app.get_option_no_throw(word) != nullptr) continue;
    const std::string near = nearest(word, long_names(where));
    return near.empty() ? "" : " (did you mean " + near + "?)";
  }
  return "";
}

// The subcommand named on the command line, for "see 'ffr-bench run --help'".
std::string chosen_command(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    for (const CLI::App* s : app.get_subcommands({})) {
      if (s->get_name() == argv[i]) return s->get_name();
    }
  }
  return "";
}

// Integer flags take plain decimal integers, and unsigned ones no sign: CLI11 2.1 reads
// "--seeds -1" into a uint64_t as 18446744073709551615 (strtoull wraps negatives).
void check_integer_options(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) check_integer_options(*sub);
  for (CLI::Option* option : app.get_options()) {
    // The type's name, without the validators' descriptions CLI11 appends ("INT:> 0").
    const std::string full = option->get_type_name();
    const std::string type = full.substr(0, full.find(':'));
    const bool is_unsigned = type == "UINT";
    if (!is_unsigned && type != "INT") continue;
    option->check(CLI::Validator(
        [is_unsigned](std::string& value) -> std::string {
          size_t start = value.size() > 1 && value[0] == '-' && !is_unsigned ? 1 : 0;
          bool digits = value.size() > start;
          for (size_t i = start; i < value.size(); ++i) digits = digits && value[i] >= '0' && value[i] <= '9';
          if (digits) return "";
          return (is_unsigned ? "expected a whole number >= 0, got '" : "expected a whole number, got '") + value +
                 "'";
        },
        "", ""));
  }
}

// std::filesystem's errors read "filesystem error: cannot create directories: Permission denied
// [out/x]": the path first, then what went wrong, as every other message.
std::string describe(const std::filesystem::filesystem_error& e) {
  std::string where = e.path1().string();
  if (!e.path2().empty()) where += " -> " + e.path2().string();
  std::string what = e.code().message();
  // "filesystem error: cannot create directories: Permission denied [...]": keep the operation.
  std::string text = e.what();
  const std::string prefix = "filesystem error: ";
  if (text.rfind(prefix, 0) == 0) text = text.substr(prefix.size());
  const size_t bracket = text.find(" [");
  if (bracket != std::string::npos) text = text.substr(0, bracket);
  return (where.empty() ? std::string() : where + ": ") + text;
}

int error(const std::string& message, int code) {
  std::fprintf(stderr, "ffr-bench: error: %s\n", message.c_str());
  return code;
}

// Runs `work` and maps what it throws onto the exit codes.
template <typename Work>
int guarded(Work&& work) {
  try {
    return work();
  } catch (const Interrupted& e) {
    std::fprintf(stderr, "ffr-bench: %s\n", e.what());
    return kExitInterrupted;
  } catch (const UsageError& e) {
    return error(e.what(), kExitUsageError);
  } catch (const std::filesystem::filesystem_error& e) {
    return error(describe(e), kExitRuntimeError);
  } catch (const std::bad_alloc&) {
    return error("out of host memory", kExitRuntimeError);
  } catch (const std::exception& e) {
    if (interrupt_requested() && !interrupt_message().empty()) {  // wrapped by a library on its way up
      std::fprintf(stderr, "ffr-bench: %s\n", interrupt_message().c_str());
      return kExitInterrupted;
    }
    return error(e.what(), kExitRuntimeError);
  }
}

}  // namespace
}  // namespace ffr::bench

int main(int argc, char** argv) {
  ffr::bench::choose_openmp_waiting(argv);  // first: it may start the program again
  using namespace ffr::bench;
  CLI::App app{"ffr-bench: From-Fake-to-Real experiments on the ffr-engine"};
  app.require_subcommand(0, 1);
  std::string version = ffr::build_info_text();
  version.pop_back();  // CLI11 adds the final newline
  app.set_version_flag("--version", version, "print the engine version, git commit, build type and "
                                                            "library versions, and exit");
  app.footer("Exit codes: 0 ok, 1 runtime error, 2 usage error, 130 interrupted (Ctrl-C).");
  for (auto& command : commands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    command.setup(*sub);
    sub->footer("Exit codes: 0 ok, 1 runtime error, 2 usage error, 130 interrupted (Ctrl-C).");
  }
  check_integer_options(app);
  const int code = guarded([&]() -> int {
    try {
      app.parse(argc, argv);  // the chosen subcommand's callback does the work inside
    } catch (const CLI::Success& e) {  // --help, --version
      return app.exit(e);
    } catch (const CLI::ParseError& e) {
      const std::string command = chosen_command(app, argc, argv);
      std::string message = e.what();
      if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) message += suggestion(app, argc, argv);
      std::fprintf(stderr, "ffr-bench: error: %s\nsee 'ffr-bench%s%s --help'\n", message.c_str(),
                   command.empty() ? "" : " ", command.c_str());
      return kExitUsageError;
    }
    if (app.get_subcommands().empty()) return run_demo();  // no subcommand: the default demo (DESIGN.md)
    return kExitOk;
  });
  std::fflush(stdout);
  return code;
}
