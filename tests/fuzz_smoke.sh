#!/usr/bin/env bash
# Fuzz smoke test (ctest: fuzz_smoke): configures this source tree with clang and
# FFR_BUILD_FUZZERS=ON in a temporary folder, builds the three libFuzzer targets (CMakeLists.txt,
# "fuzzing") and runs each from its seed corpus for a short while. Any crash, sanitizer report,
# out-of-memory or leak fails the test. New inputs go to a temporary corpus, never the repository.
# Usage: fuzz_smoke.sh SOURCE_DIR
# Environment (set by ctest; each optional): FFR_FUZZ_CXX (clang++), CMAKE_COMMAND,
# FFR_CMAKE_GENERATOR, FFR_FUZZ_RUNS (inputs per target, default 200000), FFR_FUZZ_SECONDS (time
# cap per target, default 15), FFR_FUZZ_JOBS (build jobs, default nproc), FFR_KEEP_FUZZ_SMOKE=1
# (keep the temporary folder after a pass too; it is always kept after a failure).
set -euo pipefail

source_dir=$(cd "$1" && pwd)
cxx=${FFR_FUZZ_CXX:-clang++}
cmake=${CMAKE_COMMAND:-cmake}
runs=${FFR_FUZZ_RUNS:-200000}
seconds=${FFR_FUZZ_SECONDS:-15}
jobs=${FFR_FUZZ_JOBS:-$(nproc)}

work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-fuzz-smoke.XXXXXX")
# The folder is removed after a pass; after a failure it stays, holding the crashing input.
fail() { echo "FAIL: $* (logs and inputs kept in $work)" >&2; exit 1; }

generator=()
[[ -n "${FFR_CMAKE_GENERATOR:-}" ]] && generator=(-G "$FFR_CMAKE_GENERATOR")
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

start=$SECONDS
echo "== configure and build with $cxx"
"$cmake" -S "$source_dir" -B "$work/build" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DFFR_BUILD_FUZZERS=ON -DFFR_BUILD_TESTS=OFF -DFFR_ENABLE_CUDA=OFF \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure"; }
"$cmake" --build "$work/build" -j "$jobs" --target safetensors_fuzz manifest_fuzz image_fuzz \
  >"$work/build.log" 2>&1 || { tail -50 "$work/build.log"; fail "build"; }
echo "   built in $((SECONDS - start)) s"

for target in safetensors manifest image; do
  t0=$SECONDS
  mkdir -p "$work/corpus/$target"
  dict=()
  [[ -f "$source_dir/fuzz/$target.dict" ]] && dict=(-dict="$source_dir/fuzz/$target.dict")
  echo "== $target: up to $runs inputs or $seconds s"
  if ! (cd "$work" && "./build/${target}_fuzz" -runs="$runs" -max_total_time="$seconds" -max_len=4096 -timeout=60 \
          "${dict[@]}" -artifact_prefix="$work/$target-" "$work/corpus/$target" \
          "$source_dir/fuzz/corpus/$target" >"$work/$target.log" 2>&1); then
    tail -60 "$work/$target.log"
    fail "$target: the fuzzer found a crash; reproduce with: $work/build/${target}_fuzz $work/$target-*"
  fi
  { grep -E "^Done" "$work/$target.log" || true; } | tail -1 | sed 's/^/   /'
  echo "   $((SECONDS - t0)) s"
done
echo "PASS: fuzz smoke test in $((SECONDS - start)) s"
if [[ "${FFR_KEEP_FUZZ_SMOKE:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
