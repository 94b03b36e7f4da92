#!/usr/bin/env bash
# Data-parallel training under mpirun (ctest: distributed_run; MPI builds only). On a tiny
# Spurious Fashion-MNIST with GroupDRO (3 epochs, global batch 16):
#  1. `mpirun -np 2 ffr-bench run --distributed` matches the single-process run: train losses
#     within 1e-4 relative, final weights within 1e-3 (float rounding: the ranks' gradient sums
#     add in another order), validation and test WA/BA and the per-group table exactly; with
#     vit_tiny (no batch norm, so per-rank statistics do not enter), and with resnet_tiny under
#     --sync-bn (batch statistics over the global batch);
#  2. rank 1 killed with SIGKILL (FFR_FAULT, that rank only) after epoch 1 and again in the middle
#     of epoch 2, each time rerun with the same command: the run resumes and ends byte-identical
#     to an uninterrupted distributed run.
# Usage: distributed_run.sh FFR_BENCH MPIEXEC    Exit 77 (skipped) without Fashion-MNIST or python3.
set -euo pipefail

bench=$(realpath "$1") mpiexec=$2
fashion=/usr/share/datasets/fashion-mnist
if [[ ! -e $fashion/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)"
  exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: python3 (to compare safetensors files) not found"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-distributed.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$work"

"$bench" prepare --out data --image-size 8 --real-per-class 40 --synthetic-source-per-class 12 \
  --heldout-source-per-class 4 --synthetic-eval-per-group 2 --eval-per-class 40 --threads 2 >prepare.log 2>&1 ||
  { cat prepare.log; fail "prepare failed"; }
args=(run --manifest data/manifest.csv --aug usb --method groupdro --ratio 0.9 --model vit_tiny --epochs 3
      --lr 1e-3 --batch-size 16 --device cpu --deterministic --workers 1 --threads 1)
# CI runs as root on 2 cores.
ranks() { "$mpiexec" -n 2 --allow-run-as-root --oversubscribe "$@"; }
# Rank 1 alone gets FFR_FAULT=$2 (engine/fault_injection.h).
rank1_fault() {
  ranks bash -c 'if [[ $OMPI_COMM_WORLD_RANK == 1 ]]; then export FFR_FAULT=$0; fi; exec "$@"' "$2" \
    "$bench" "${args[@]}" --out "$1" --distributed
}

"$bench" "${args[@]}" --out single >single.log 2>&1 || { cat single.log; fail "the single-process run failed"; }
ranks "$bench" "${args[@]}" --out dist --distributed >dist.log 2>&1 || { cat dist.log; fail "the 2-rank run failed"; }
grep -q "data parallel: 2 ranks (mpi)" dist.log || { cat dist.log; fail "the run did not say it ran on 2 ranks"; }
[[ $(grep -c "data parallel:" dist.log) == 1 ]] || { cat dist.log; fail "rank 1 printed too (only rank 0 reports)"; }

same_as_single() {
python3 - "$1" "$2" <<'PY' || fail "the 2-rank run $2 differs from the single-process run $1"
import json, math, struct, sys
a, b = sys.argv[1], sys.argv[2]
def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        lo, hi = t["data_offsets"]
        out[name] = struct.unpack("<%df" % ((hi - lo) // 4), raw[8 + n + lo:8 + n + hi])
    return out
ok = True
ma = [json.loads(l) for l in open(a + "/metrics.jsonl")]
mb = [json.loads(l) for l in open(b + "/metrics.jsonl")]
assert len(ma) == len(mb) == 3, (len(ma), len(mb))
for x, y in zip(ma, mb):
    if abs(x["train_loss"] - y["train_loss"]) > 1e-4 * abs(x["train_loss"]):
        print("train_loss of epoch %d: %r vs %r" % (x["epoch"], x["train_loss"], y["train_loss"])); ok = False
    for key in ("val_worst_group_accuracy", "val_balanced_accuracy", "best"):
        if x[key] != y[key]:
            print("%s of epoch %d: %r vs %r" % (key, x["epoch"], x[key], y[key])); ok = False
ra, rb = json.load(open(a + "/result.json")), json.load(open(b + "/result.json"))
for split in ("val", "test"):
    for key in ("worst_group_accuracy", "balanced_accuracy"):
        if ra[split][key] != rb[split][key]:
            print("%s %s: %r vs %r" % (split, key, ra[split][key], rb[split][key])); ok = False
if open(a + "/groups.csv").read() != open(b + "/groups.csv").read():
    print("groups.csv differs"); ok = False
ta, tb = tensors(a + "/best.safetensors"), tensors(b + "/best.safetensors")
assert ta.keys() == tb.keys()
worst = max(abs(p - q) for k in ta for p, q in zip(ta[k], tb[k]))
if worst > 1e-3:
    print("weights differ by up to %g" % worst); ok = False
print("   %s (2 ranks) vs %s (1 process): losses, WA/BA and per-group table match; weights within %.1e" % (b, a, worst))
sys.exit(0 if ok else 1)
PY
}
same_as_single single/seed-0 dist/seed-0

# Batch norm: --sync-bn gives the single-process statistics (without it each rank has its own).
bn_args=(run --manifest data/manifest.csv --aug none --method groupdro --ratio 0.9 --model resnet_tiny --epochs 3
         --lr 1e-3 --batch-size 16 --device cpu --deterministic --workers 1 --threads 1)
status=0
"$bench" "${bn_args[@]}" --out bad --sync-bn >bad.log 2>&1 || status=$?
[[ $status == 2 ]] && grep -q -- "--sync-bn: needs --distributed" bad.log || { cat bad.log; fail "--sync-bn without --distributed was not refused"; }
"$bench" "${bn_args[@]}" --out bn-single >bn-single.log 2>&1 || { cat bn-single.log; fail "the single-process ResNet run failed"; }
ranks "$bench" "${bn_args[@]}" --out bn-sync --distributed --sync-bn >bn-sync.log 2>&1 || { cat bn-sync.log; fail "the 2-rank --sync-bn run failed"; }
same_as_single bn-single/seed-0 bn-sync/seed-0

# Kill rank 1 twice, resume each time.
saved_steps() { head -c 65536 "$1/seed-0/resume.safetensors" | grep -ao '"steps_done":"[0-9]*"' | grep -o '[0-9][0-9]*'; }
killed() {
  local status=0
  rank1_fault "$1" "$2" >killed.log 2>&1 || status=$?
  [[ $status != 0 ]] || { cat killed.log; fail "FFR_FAULT=$2 on rank 1: the run did not stop"; }
  [[ ! -e $1/seed-0/result.json ]] || fail "FFR_FAULT=$2: a killed run left result.json"
  [[ -e $1/seed-0/resume.safetensors ]] || { cat killed.log; fail "FFR_FAULT=$2: no resume.safetensors after the kill"; }
  echo "   rank 1 killed ($2)"
}
killed resumed kill-after-epoch=1
killed resumed kill-at-step=$(( $(saved_steps resumed) + 2 ))
ranks "$bench" "${args[@]}" --out resumed --distributed >resumed.log 2>&1 || { cat resumed.log; fail "the resumed 2-rank run failed"; }
grep -q "resuming" resumed.log || { cat resumed.log; fail "the rerun did not resume"; }
a=dist/seed-0 b=resumed/seed-0
cmp "$a/best.safetensors" "$b/best.safetensors" || fail "best.safetensors differs from the uninterrupted 2-rank run's"
cmp "$a/groups.csv" "$b/groups.csv" || fail "groups.csv differs"
without_timing() { grep -v -e '"seconds"' -e '"device"' "$1"; }
diff <(without_timing "$a/result.json") <(without_timing "$b/result.json") || fail "result.json numbers differ"
strip_metrics() { sed -E 's/"(seconds|images_per_second)":[^,}]*,?//g' "$1"; }
diff <(strip_metrics "$a/metrics.jsonl") <(strip_metrics "$b/metrics.jsonl") || fail "metrics.jsonl numbers differ"
echo "PASS: 2 ranks match 1 process; a killed rank resumes to the same result"
