#!/usr/bin/env bash
# `grid --slurm --submit` against a real Slurm (ctest: slurm_grid). Starts a single-node Slurm on
# localhost (tests/slurm_local.sh: munged, slurmctld, slurmd in a temp folder, stopped at the
# end), submits a tiny grid as a 2-task job array plus its merge job, waits for them, and checks
# that the merged report equals the one of the same grid run unsharded here; then submits again
# and checks the resubmission ran nothing. Also: the scripts' text without --submit, and bad flags.
# Usage: slurm_grid.sh FFR_BENCH    Exit 77 (skipped, saying why) when Slurm cannot run here or
# Fashion-MNIST is missing.
set -euo pipefail

bench=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
source "$here/grid_compare.sh"
source "$here/slurm_local.sh"
fashion=/usr/share/datasets/fashion-mnist
if [[ ! -e $fashion/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-slurm-grid.XXXXXX")
cleanup() {
  slurm_stop
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$work"

"$bench" prepare --out data --image-size 16 --real-per-class 40 --synthetic-source-per-class 12 \
  --heldout-source-per-class 4 --synthetic-eval-per-group 2 --eval-per-class 40 --threads 2 >/dev/null
grid() {
  "$bench" grid --preset figure3 --manifest data/manifest.csv --ratios 0.9 --seeds 0 --lr 1e-3 --stage1-lr 1e-3 --image-size 0 \
    --model resnet_tiny --epochs 1 --batch-size 16 --device cpu --deterministic --workers 1 --threads 1 "$@"
}

# Bad flags: one error naming the flag, exit 2, nothing written.
expect_usage_error() {
  local status=0 out
  out=$(grid --out bad "$@" 2>&1) || status=$?
  [[ $status == 2 ]] || fail "grid $*: expected exit 2, got $status: $out"
  grep -q -- "${1%%=*}" <<<"$out" || fail "grid $*: the error does not name ${1%%=*}: $out"
  [[ ! -e bad ]] || fail "grid $*: wrote bad/"
}
expect_usage_error --submit
expect_usage_error --slurm-opts=--time=1:00 --shards 2
expect_usage_error --shard 0/2 --slurm
expect_usage_error --slurm-opts="--comment='a b'" --slurm
expect_usage_error --slurm-opts=partition --slurm

# Without --submit: the scripts only, each task's shard and the merge over the same folder.
grid --out scripts --slurm --shards 2 --slurm-opts="-p debug --time=10:00" >scripts.log
script=scripts/slurm/grid.sbatch
grep -qx '#SBATCH --array=0-1' "$script" || fail "$script: no 2-task array"
grep -qx '#SBATCH -p debug' "$script" || fail "$script: --slurm-opts not written as #SBATCH lines"
grep -q -- '--shard "$SLURM_ARRAY_TASK_ID/2"' "$script" || fail "$script: the task's shard is not passed"
grep '^exec' "$script" | grep -q -- ' --slurm' && fail "$script: the task would write scripts again"
grep -q "merge --out $work/scripts" scripts/slurm/merge.sbatch || fail "merge.sbatch does not merge the grid's folder"
[[ ! -e scripts/runs ]] || fail "--slurm without --submit ran runs"
echo "   scripts written"

if ! slurm_start "$work/slurm"; then
  echo "SKIP: $slurm_why"
  exit 77
fi
echo "   local Slurm up ($(sinfo -h -o '%N %c CPUs'))"

# The job ids from --submit's line "submitted: job array A (2 tasks), merge job M (after it)".
submit() {
  grid --out cluster --slurm --submit --shards 2 >"$1" 2>&1 || { cat "$1"; fail "grid --slurm --submit failed"; }
  sed -n 's/^submitted: job array \([0-9]*\) (2 tasks), merge job \([0-9]*\) (after it)$/\1 \2/p' "$1"
}
# Waits until job $1 has ended; fails unless it COMPLETED.
wait_job() {
  local state=""
  for _ in $(seq 1200); do
    state=$(scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort -u | tr '\n' ' ')
    [[ -n $state && $state != *PENDING* && $state != *RUNNING* && $state != *CONFIGURING* && $state != *COMPLETING* ]] && break
    sleep 0.25
  done
  [[ $state == "JobState=COMPLETED " ]] || { tail -5 cluster/slurm/*.log 2>/dev/null; fail "job $1 ended $state"; }
}

start=$SECONDS
read -r array merge < <(submit submit.log)
[[ -n $merge ]] || { cat submit.log; fail "no job ids printed"; }
wait_job "$array"
wait_job "$merge"
echo "   job array $array and merge job $merge done in $((SECONDS - start)) s"
grep -q "runs done now" cluster/slurm/shard-0.log || fail "shard 0 did not run"
grep -q "runs done now" cluster/slurm/shard-1.log || fail "shard 1 did not run"
grep -q '^Merged from' cluster/report.md || fail "cluster/report.md is not the merge job's"

grid --out plain >plain.log 2>&1 || { cat plain.log; fail "the unsharded grid failed"; }
same_grid_report plain cluster || fail "the Slurm grid's merged report differs from the unsharded grid's"
echo "   merged report identical to the unsharded grid's"

read -r array merge < <(submit resubmit.log)
wait_job "$array"
wait_job "$merge"
for log in cluster/slurm/shard-0.log cluster/slurm/shard-1.log; do
  grep -q "0 runs done now" "$log" || { cat "$log"; fail "$log: the resubmission redid runs"; }
done
echo "PASS: grid --slurm --submit on a local Slurm"
