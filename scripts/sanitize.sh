#!/usr/bin/env bash
# The CUDA test suite under compute-sanitizer (issue "Reliability"): memcheck (out-of-bounds and
# misaligned accesses, leaks of device memory, errors from CUDA calls), then racecheck (shared
# memory hazards), then synccheck and initcheck (reads of uninitialised device memory), over every
# test that runs on the GPU. Needs a GPU and compute-sanitizer (with the CUDA toolkit); builds with
# scripts/build.sh if there is no build yet. Each tool's log goes to build/sanitize-<tool>.log;
# the script fails when any tool reports an error.
# Usage: bash scripts/sanitize.sh [gtest filter]   (default: every *Cuda* suite and the CUDA tests
#        of the loader and inference)
# Environment (scripts/gpu-check.sh uses these): FFR_TESTS (the test binary; default
# build/ffr_tests, built if missing), FFR_SANITIZE_TOOLS (default "memcheck racecheck synccheck
# initcheck"), FFR_SANITIZE_LOG_DIR (default build). Exit 77 when compute-sanitizer is missing, no
# GPU answers, or the sanitizer does not support the device (seen on gVisor machines).
set -euo pipefail
cd "$(dirname "$0")/.."

filter=${1:-'*Cuda*:DataDeviceLoader.*:Inference.*:NumericGuard*'}
tests=${FFR_TESTS:-build/ffr_tests}
tools=${FFR_SANITIZE_TOOLS:-memcheck racecheck synccheck initcheck}
log_dir=${FFR_SANITIZE_LOG_DIR:-build}
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
[[ -x $sanitizer ]] || { echo "compute-sanitizer not found (it comes with the CUDA toolkit)" >&2; exit 77; }
nvidia-smi -L >/dev/null 2>&1 || { echo "no GPU answers nvidia-smi: compute-sanitizer needs one" >&2; exit 77; }
[[ -n ${FFR_TESTS:-} || -x $tests ]] || bash scripts/build.sh
mkdir -p "$log_dir"

status=0
for tool in $tools; do
  extra=()
  [[ $tool == memcheck ]] && extra=(--leak-check full)
  log=$log_dir/sanitize-$tool.log
  echo "== compute-sanitizer --tool $tool ($filter)"
  if "$sanitizer" --tool "$tool" "${extra[@]}" --error-exitcode 99 --print-limit 20 \
       "$tests" --gtest_filter="$filter" >"$log" 2>&1; then
    echo "   clean: $(grep -E '^=+ (ERROR SUMMARY|RACECHECK SUMMARY)' "$log" | tail -1)"
  elif grep -qiE "device not supported|not supported on this (device|platform)" "$log"; then
    echo "   compute-sanitizer does not support this device: $(grep -iE 'not supported' "$log" | head -1)"
    exit 77
  else
    status=1
    echo "   FAILED: see $log"
    grep -E "^=+ (Invalid|Race|Uninitialized|Barrier|ERROR)" "$log" | head -20 || true
  fi
done
exit $status
