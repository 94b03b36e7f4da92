#!/usr/bin/env bash
# Grid worker processes (ctest: grid_workers). A tiny deterministic grid (figure3 on a tiny
# Spurious Fashion-MNIST, resnet_tiny, 10 runs) is run by one process, then by `--processes 2`:
# the reports must be identical. Then `--processes 2` again, with one worker killed (SIGKILL) in
# the middle of a run: the other worker takes its run over, the grid ends complete with the same
# report, and a rerun finds nothing left to do. Bad flags get one error naming the flag.
# Usage: grid_workers.sh FFR_BENCH    Exit 77 (skipped) without Fashion-MNIST.
set -euo pipefail

bench=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/grid_compare.sh"
fashion=/usr/share/datasets/fashion-mnist
if [[ ! -e $fashion/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-grid-workers.XXXXXX")
grid_pid=""
cleanup() {
  [[ -n $grid_pid ]] && kill "$grid_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bench" prepare --out "$work/data" --image-size 16 --real-per-class 40 --synthetic-source-per-class 12 \
  --heldout-source-per-class 4 --synthetic-eval-per-group 2 --eval-per-class 40 --threads 2 >/dev/null
grid() {
  "$bench" grid --preset figure3 --manifest "$work/data/manifest.csv" --ratios 0.9 --seeds 0,1 --lr 1e-3 --stage1-lr 1e-3 --image-size 0 \
    --model resnet_tiny --epochs 2 --batch-size 16 --device cpu --deterministic --workers 1 --threads 1 "$@"
}

# Flags: one clear error, exit 2, nothing written.
expect_usage_error() {
  local status=0 out
  out=$(grid --out "$work/bad" "$@" 2>&1) || status=$?
  [[ $status == 2 ]] || fail "grid $*: expected exit 2, got $status: $out"
  grep -q -- "$1" <<<"$out" || fail "grid $*: the error does not name $1: $out"
  [[ ! -e $work/bad ]] || fail "grid $*: wrote $work/bad"
}
expect_usage_error --processes 0
expect_usage_error --devices 0,x
expect_usage_error --workers-per-device 2 --processes 2
echo "   bad flags refused"

start=$SECONDS
grid --out "$work/one" >"$work/one.log" 2>&1 || { cat "$work/one.log"; fail "the one-process grid failed"; }
echo "   one process: $((SECONDS - start)) s"
start=$SECONDS
grid --out "$work/two" --processes 2 >"$work/two.log" 2>&1 || { cat "$work/two.log"; fail "the 2-worker grid failed"; }
echo "   two workers: $((SECONDS - start)) s"
[[ $(ls "$work/two/workers") == $'worker-0.log\nworker-1.log' ]] || fail "expected two worker logs in $work/two/workers"
for log in "$work/two/workers/"worker-*.log; do
  grep -q "runs done here" "$log" || { cat "$log"; fail "$log: the worker did not finish"; }
done
same_grid_report "$work/one" "$work/two" || fail "2 workers differ from 1"
ls "$work/two/runs/"*.claim >/dev/null 2>&1 && fail "claim files left behind"
echo "   2 workers: report identical to 1 worker"

# Kill one worker in the middle of a run: the pid in a claim file is a worker holding a run.
grid --out "$work/killed" --processes 2 >"$work/killed.log" 2>&1 &
grid_pid=$!
victim=""
for _ in $(seq 600); do
  claim=$(ls "$work/killed/runs/"*.claim 2>/dev/null | head -1 || true)
  if [[ -n $claim ]] && [[ -n $(ls "$work/killed/runs/"*/metrics.jsonl 2>/dev/null) ]]; then
    victim=$(grep -o '"pid":[0-9]*' "$claim" | grep -o '[0-9]*' || true)
    [[ -n $victim ]] && kill -9 "$victim" 2>/dev/null && break
    victim=""
  fi
  sleep 0.1
done
[[ -n $victim ]] || { cat "$work/killed.log"; fail "no worker to kill (no claim file appeared)"; }
status=0
wait "$grid_pid" || status=$?
grid_pid=""
[[ $status == 0 ]] || { cat "$work/killed.log"; fail "the grid with a killed worker failed ($status)"; }
grep -q "killed by signal 9" "$work/killed.log" || { cat "$work/killed.log"; fail "the launcher did not report the killed worker"; }
same_grid_report "$work/one" "$work/killed" || fail "the grid with a killed worker differs from 1 worker"
echo "   a worker killed mid-run (pid $victim): its run taken over, report identical"
grid --out "$work/killed" --processes 2 >"$work/again.log" 2>&1 || { cat "$work/again.log"; fail "the rerun failed"; }
grep -q "^0 runs done now, [0-9]* already complete" "$work/again.log" || { cat "$work/again.log"; fail "the rerun redid runs"; }
echo "PASS: grid workers"
