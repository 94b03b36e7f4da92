# Helpers for the grid tests (sourced): a grid's report.md and results.csv without what depends on
# when, where and how fast it ran (timings, folder names in notes), so grids run differently
# (workers, shards, Slurm) compare equal exactly when their numbers and choices are equal.

# report.md without the time line, the merge/shard notes (they name folders) and blank lines.
report_numbers() { grep -v -e '^$' -e '^- Compute time' -e '^Merged from' -e '^Shard ' "$1"; }
# results.csv without its "seconds" column.
results_numbers() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") skip = i }
           { line = ""; for (i = 1; i <= NF; i++) if (i != skip) line = line (line == "" ? "" : ",") $i; print line }' "$1"
}
# Fails (with a diff) unless grid folders $1 and $2 hold the same report and results.
same_grid_report() {
  diff <(report_numbers "$1/report.md") <(report_numbers "$2/report.md") || { echo "FAIL: $2/report.md differs from $1's" >&2; return 1; }
  diff <(results_numbers "$1/results.csv") <(results_numbers "$2/results.csv") || { echo "FAIL: $2/results.csv differs from $1's" >&2; return 1; }
}
