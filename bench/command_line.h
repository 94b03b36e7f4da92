// This process's own command line, for the commands that start copies of themselves: grid
// workers (bench/grid_workers.h) and Slurm job scripts (bench/grid_slurm.h).
#pragma once

#include <string>
#include <vector>

namespace ffr::bench {

// argv as the kernel holds it (/proc/self/cmdline), argv[0] first.
std::vector<std::string> own_command_line();

// The absolute path of the running ffr-bench (/proc/self/exe).
std::string own_executable();

// `args` without the given flags: each of `with_value` drops "--flag VALUE" or "--flag=VALUE",
// each of `without_value` drops "--flag". Only flags that take one value may be listed in
// `with_value` (the grid's flags that take lists are not removed this way).
std::vector<std::string> without_flags(const std::vector<std::string>& args, const std::vector<std::string>& with_value,
                                       const std::vector<std::string>& without_value = {});

}  // namespace ffr::bench
