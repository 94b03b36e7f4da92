// `ffr-bench merge --out DIR SHARD_DIR...`: joins the folders of a sharded grid (`grid --shard i/N`
// on several machines) into one report. Nothing is copied or rerun: the runs are read where they
// lie, the shards' grid.json files must agree, and DIR gets grid.json, report.md, results.csv and
// the plots.
#include "bench/command.h"
#include "engine/error.h"
#include "ffr/report.h"

#include <cstdio>
#include <memory>

namespace ffr::bench {
namespace {

struct MergeOptions {
  std::string out;
  std::vector<std::string> shard_dirs;
};

void run(const MergeOptions& o) {
  const std::vector<std::string> dirs = o.shard_dirs.empty() ? std::vector<std::string>{o.out} : o.shard_dirs;
  ReportOptions options;
  std::string joined;
  for (const std::string& d : dirs) joined += (joined.empty() ? "" : ", ") + d;
  options.notes.push_back(detail::concat("Merged from ", dirs.size(), " folder(s): ", joined, "."));
  const GridReport report = merge_grid_folders(dirs, o.out, options);
  const GridSummary& s = report.summary;
  std::printf("%s\nreport: %s\n", format_summary_table(s).c_str(), report.files.report_md.c_str());
  if (s.runs_complete < s.runs_planned) {
    std::printf("warning: %zu of %zu runs are missing (rows marked * in the report); rerun the shards that "
                "stopped, then merge again\n",
                s.runs_planned - s.runs_complete, s.runs_planned);
  }
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<MergeOptions>();
  sub.add_option("--out", o->out, "folder for the merged report (may be one of the shard folders)")->required();
  sub.add_option("shard_dirs", o->shard_dirs, "the --out folders of the shards (default: --out itself)")
      ->check(CLI::ExistingDirectory);
  sub.callback([o] { run(*o); });
}

const bool registered = register_command(
    {"merge", "join the output folders of a sharded grid into one report (report.md, results.csv, plots)", setup});

}  // namespace
}  // namespace ffr::bench
