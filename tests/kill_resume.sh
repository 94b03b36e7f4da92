#!/usr/bin/env bash
# Kill-and-resume test (ctest: kill_and_resume). Runs one deterministic FFR + GroupDRO
# configuration (2 stages, 5 epochs, resnet_tiny on a tiny Spurious Fashion-MNIST) with
# `ffr-bench run`, once without interruption and once killed with SIGKILL three times
# (engine/fault_injection.h): after the first epoch's checkpoint, in the middle of an epoch, and
# right after stage 2's first checkpoint, each time restarted with the same command. The resumed
# run must end byte-identical to the uninterrupted one: best checkpoint, per-group table, result
# numbers and per-epoch metrics (timings aside).
# Usage: kill_resume.sh FFR_BENCH    Exit 77 (skipped) without Fashion-MNIST.
set -euo pipefail

bench=$1
fashion=/usr/share/datasets/fashion-mnist
if [[ ! -e $fashion/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-kill-resume.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bench" prepare --out "$work/data" --image-size 16 --real-per-class 60 --synthetic-source-per-class 20 \
  --heldout-source-per-class 4 --synthetic-eval-per-group 2 --eval-per-class 40 --threads 2 >/dev/null
run() {
  "$bench" run --manifest "$work/data/manifest.csv" --out "$1" --aug ffr --method groupdro --ratio 0.9 \
    --model resnet_tiny --stage1-epochs 2 --epochs 3 --lr 1e-3 --stage1-lr 1e-3 --batch-size 16 \
    --device cpu --deterministic --workers 2 >"$work/log" 2>&1
}
# Runs killed by FFR_FAULT=$2: must die of SIGKILL (status 137), leaving no result.
killed_run() {
  local status=0
  FFR_FAULT=$2 run "$1" || status=$?
  [[ $status == 137 ]] || { cat "$work/log"; fail "FFR_FAULT=$2: expected death by SIGKILL (137), got $status"; }
  [[ ! -e $1/seed-0/result.json ]] || fail "FFR_FAULT=$2: a killed run left result.json"
  [[ -e $1/seed-0/resume.safetensors ]] || fail "FFR_FAULT=$2: no resume.safetensors after the kill"
  echo "   killed ($2)"
}
# The run-wide step count saved in the resume file's header.
saved_steps() {
  head -c 65536 "$1/seed-0/resume.safetensors" | grep -ao '"steps_done":"[0-9]*"' | grep -o '[0-9][0-9]*'
}

run "$work/reference" || { cat "$work/log"; fail "the uninterrupted run failed"; }
echo "   uninterrupted run done"
out=$work/interrupted
killed_run "$out" kill-after-epoch=1               # stage 1, after epoch 1's checkpoint
killed_run "$out" kill-at-step=$(( $(saved_steps "$out") + 2 ))  # stage 1, epoch 2, 2nd batch
killed_run "$out" kill-after-epoch=2               # stage 1 epoch 2, then stage 2 epoch 1: killed
run "$out" || { cat "$work/log"; fail "the resumed run failed"; }
grep -q "test WA" "$work/log" || fail "the resumed run printed no result"

a=$work/reference/seed-0 b=$out/seed-0
[[ ! -e $b/resume.safetensors ]] || fail "the completed run kept resume.safetensors"
cmp "$a/best.safetensors" "$b/best.safetensors" || fail "best.safetensors differs from the uninterrupted run's"
cmp "$a/groups.csv" "$b/groups.csv" || fail "groups.csv differs"
without_timing() { grep -v -e '"seconds"' -e '"device"' "$1"; }
diff <(without_timing "$a/result.json") <(without_timing "$b/result.json") || fail "result.json numbers differ"
strip_metrics() { sed -E 's/"(seconds|images_per_second)":[^,}]*,?//g' "$1"; }
diff <(strip_metrics "$a/metrics.jsonl") <(strip_metrics "$b/metrics.jsonl") || fail "metrics.jsonl numbers differ"
echo "PASS: killed 3 times, resumed, identical to the uninterrupted run ($(wc -l <"$b/metrics.jsonl") epochs)"
