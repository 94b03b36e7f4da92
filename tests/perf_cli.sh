#!/usr/bin/env bash
# `ffr-bench perf` end to end (ctest: perf_cli): a tiny model for 2 steps on the CPU, training,
# --inference and --inference --api; the last stdout line must be one JSON object with the documented keys and sane
# numbers; bad flags must be one clear error and a non-zero exit.
# Usage: perf_cli.sh FFR_BENCH
set -euo pipefail
bench=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-perf-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

check_json() {  # $1: stdout file, $2: expected mode, $3: expected precision
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
doc = json.loads(lines[-1])
keys = ["images_per_s", "ms_per_step_median", "ms_per_step_min", "ms_per_step_max", "peak_host_bytes",
        "peak_device_bytes", "model", "batch", "image_size", "device", "precision", "threads"]
missing = [k for k in keys if k not in doc]
assert not missing, f"missing keys {missing}"
assert doc["model"] == "resnet_tiny" and doc["batch"] == 4 and doc["image_size"] == 16, doc
assert doc["device"] == "cpu" and doc["precision"] == sys.argv[3] and doc["mode"] == sys.argv[2], doc
assert doc["threads"] >= 1, doc
assert 0 < doc["ms_per_step_min"] <= doc["ms_per_step_median"] <= doc["ms_per_step_max"] < 60000, doc
assert len(doc["step_ms"]) == 2, doc
ms = sum(doc["step_ms"])
assert abs(doc["images_per_s"] - 4 * 2 / (ms / 1000)) < 1e-6 * doc["images_per_s"], doc
assert doc["peak_host_bytes"] > 0 and doc["peak_device_bytes"] == 0, doc
PY
}

common=(perf --model resnet_tiny --batch-size 4 --image-size 16 --num-classes 10 --device cpu --steps 2 --warmup 1 --threads 1 --json)
"$bench" "${common[@]}" >"$work/train.out" || fail "training perf exited $?"
check_json "$work/train.out" train fp32 || fail "training JSON: $(tail -1 "$work/train.out")"
"$bench" "${common[@]}" --inference --precision bf16 >"$work/infer.out" || fail "inference perf exited $?"
check_json "$work/infer.out" inference bf16 || fail "inference JSON: $(tail -1 "$work/infer.out")"
# The embedding API on the same batches (InferenceModel::classify_batch).
"$bench" "${common[@]}" --inference --api >"$work/api.out" || fail "API perf exited $?"
check_json "$work/api.out" inference fp32 || fail "API JSON: $(tail -1 "$work/api.out")"
python3 -c 'import json,sys; assert json.loads(open(sys.argv[1]).read().splitlines()[-1])["api"] is True' \
  "$work/api.out" || fail "API JSON lacks api: true"

# Bad flags: one "ffr-bench: error:"-style line naming the flag, non-zero exit.
expect_error() {  # $1: text the message must hold; the rest: arguments
  local want=$1; shift
  if "$bench" "$@" >"$work/bad.out" 2>"$work/bad.err"; then fail "accepted: $*"; fi
  grep -q -- "$want" "$work/bad.err" || fail "error for '$*' does not mention '$want': $(cat "$work/bad.err")"
}
expect_error "--precision" perf --model resnet_tiny --precision fp16
expect_error "--batch-size" perf --model resnet_tiny --batch-size 0
expect_error "--api" perf --model resnet_tiny --api --device cpu --steps 1 --warmup 0
expect_error "--steps" perf --model resnet_tiny --steps 0
expect_error "--device" perf --model resnet_tiny --device tpu
expect_error "resnet51" perf --model resnet51 --device cpu --steps 1 --warmup 0
expect_error "--model" perf --batch-size 2
echo "perf_cli: OK"
