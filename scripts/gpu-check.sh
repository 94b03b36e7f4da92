#!/usr/bin/env bash
# The one command a GPU session runs first: everything that only a GPU can check, in at most
# 8 minutes on one H100/H200 with 16 cores, each step with its own time limit, none stopping the
# others. Writes OUTDIR/summary.txt (one screen: what passed, failed, was skipped, the numbers),
# OUTDIR/results.json, and every log under OUTDIR/logs/ (also packed as OUTDIR/logs.tar.gz).
#
#   bash scripts/gpu-check.sh OUTDIR          on a GPU machine (the device tool: README "GPU")
#   bash scripts/gpu-check.sh --cpu OUTDIR    the same steps on a CPU build with tiny sizes, skipping
#                                             (and saying so) what needs a GPU; ctest gpu_check_cpu_mode
#
# Steps: environment (GPU, driver, nvcc, PyTorch, cuDNN/cuBLAS/cudart from PyTorch's NVIDIA wheels
# on LD_LIBRARY_PATH) -> binaries (prebuilt from .gpu-pack, made by scripts/gpu-pack.sh, else
# built here for this GPU's architecture only) -> device report -> every CUDA test -> held-out
# parity of `ffr-bench forward` against PyTorch (resnet50, vit_b32, full size) -> `ffr-bench perf`
# (resnet50, vit_b32; batch 256, 224 px; tf32 and bf16) -> a one-epoch CUDA demo (with a
# --profile-steps window) -> compute-sanitizer memcheck and racecheck on a fast subset.
#
# Environment: FFR_GPU_PACK (default REPO/.gpu-pack), FFR_GPU_CHECK_BIN_DIR (use the ffr-bench
# and ffr_tests there: the ctest passes its build tree), FFR_GPU_CHECK_BUDGET (seconds; default 470
# on a GPU, 110 with --cpu). Exit status: 0 when nothing failed (skips are fine), 1 otherwise,
# 2 for bad usage.
set -uo pipefail  # not -e: one failed step must not stop the others

usage() { echo "usage: $0 [--cpu] OUTDIR" >&2; exit 2; }
mode=gpu
if [[ ${1:-} == --cpu ]]; then mode=cpu; shift; fi
[[ $# -eq 1 && -n $1 ]] || usage

repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
logs=$out/logs
rm -rf "$logs" "$out/summary.txt" "$out/results.json" "$out/logs.tar.gz"
mkdir -p "$logs"
work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
pack=${FFR_GPU_PACK:-$repo/.gpu-pack}
if [[ $mode == gpu ]]; then budget=${FFR_GPU_CHECK_BUDGET:-470}; else budget=${FFR_GPU_CHECK_BUDGET:-110}; fi
start=$(date +%s)
results=$logs/steps.tsv
: >"$results"
export FFR_SOURCE_DIR=$repo  # test fixtures, wherever the test binary was built
export PYTHONUNBUFFERED=1

say() { echo "[gpu-check $(($(date +%s) - start))s] $*"; }
left() { echo $((budget - ($(date +%s) - start))); }
record() {  # name status seconds note
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4//$'\t'/ }" >>"$results"
  say "$1: $2 (${3}s) ${4:-}"
}
skip() { record "$1" SKIP 0 "$2"; }

# run_step NAME CAP COMMAND...: runs the command with a time limit of min(CAP, time left), output
# in logs/NAME.log. Exit 0 PASS, 77 SKIP, 124/137 TIMEOUT, else FAIL. The note is the log's last
# line starting with "NOTE: " (or its last line).
run_step() {
  local name=$1 cap=$2; shift 2
  local limit; limit=$(left)
  ((limit > cap)) && limit=$cap
  if ((limit < 5)); then skip "$name" "out of time (the check's budget is ${budget}s)"; return 0; fi
  local t0 rc status note
  t0=$(date +%s)
  # Steps are often functions of this script: hand them and the state they read to the child bash.
  export bench tests logs mode repo work pack fashion cuda_filter build_dir
  export -f $(declare -F | awk '{print $3}')
  timeout -k 5 "$limit" bash -c '"$@"' _ "$@" >"$logs/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=PASS ;;
    77) status=SKIP ;;
    124 | 137) status=TIMEOUT ;;
    *) status=FAIL ;;
  esac
  note=$(grep '^NOTE: ' "$logs/$name.log" | tail -1 | cut -c7-)
  [[ -z $note ]] && note=$(grep -v '^\s*$' "$logs/$name.log" | tail -1 | cut -c1-160)
  [[ $status == TIMEOUT ]] && note="stopped after ${limit}s; $note"
  [[ $status == FAIL ]] && note="exit $rc; $note"
  record "$name" "$status" "$(($(date +%s) - t0))" "$note"
  return 0
}

# ---- 1. environment -------------------------------------------------------------------------
gpu_name="" compute_cap="" arch=""
{
  echo "mode: $mode   date: $(date -u +%FT%TZ)   host: $(hostname)   cores: $(nproc)"
  echo "repo: $repo   commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
  if [[ $mode == gpu ]]; then
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi failed"
    command -v nvcc >/dev/null && nvcc --version | tail -2
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1
  fi
} >"$logs/environment.log" 2>&1
if [[ $mode == gpu ]]; then
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  compute_cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ')
  arch=${compute_cap//./}
  # cuDNN, cuBLAS and the CUDA runtime from PyTorch's NVIDIA wheels (this machine has no system
  # copies): every folder under the `nvidia` namespace package that holds one of them.
  wheel_libs=$(python3 - <<'EOF' 2>>"$logs/environment.log"
import glob, importlib.util, os
roots = []
for package in ("nvidia", "torch"):  # the wheels; torch/lib in case a build bundles them
    spec = importlib.util.find_spec(package)
    if spec is not None:
        roots += [os.path.join(r, "lib") if package == "torch" else r for r in spec.submodule_search_locations]
dirs = []
for root in roots:
    for pattern in ("libcudnn.so*", "libcublas.so*", "libcublasLt.so*", "libcudart.so*", "libnvJitLink.so*"):
        for f in glob.glob(os.path.join(root, "**", pattern), recursive=True):
            d = os.path.dirname(f)
            if d not in dirs:
                dirs.append(d)
print(":".join(dirs))
EOF
)
  cudnn_lib=$(IFS=:; for d in $wheel_libs; do ls "$d"/libcudnn.so.[0-9]* 2>/dev/null; done | head -1)
  cudnn_include=""
  [[ -n $cudnn_lib ]] && cudnn_include=$(dirname "$(dirname "$cudnn_lib")")/include
  echo "wheel library folders: ${wheel_libs:-none found}" >>"$logs/environment.log"
  echo "cuDNN: ${cudnn_lib:-not found} (headers ${cudnn_include:-?})" >>"$logs/environment.log"
  export LD_LIBRARY_PATH=${wheel_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  if [[ -z $gpu_name ]]; then
    record environment FAIL 0 "no GPU answers nvidia-smi (use --cpu on a machine without one)"
  elif [[ -z $cudnn_lib ]]; then
    record environment FAIL 0 "$gpu_name (sm_$arch); cuDNN not found in python3's nvidia wheels"
  else
    record environment PASS 0 "$gpu_name (sm_$arch), cuDNN $(basename "$cudnn_lib") from the wheels"
  fi
else
  record environment PASS 0 "CPU mode: no GPU steps, tiny sizes"
fi

# ---- 2. binaries: prebuilt first, else build ---------------------------------------------------
bench="" tests="" route="" build_dir=""
binaries_start() {  # DIR: do the binaries there start? (the device report runs without a GPU too)
  [[ -x $1/ffr-bench && -x $1/ffr_tests ]] && timeout 60 "$1/ffr-bench" device >>"$logs/binaries.log" 2>&1 &&
    timeout 60 "$1/ffr_tests" --gtest_list_tests >/dev/null 2>>"$logs/binaries.log"
}
build_here() {  # configure and build for this machine; sets bench/tests on success
  local dir=$work/build cap flags=()
  if [[ $mode == gpu ]]; then
    cap=300
    flags=(-DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" -DFFR_CUDNN_LIBRARY="$cudnn_lib"
           -DFFR_CUDNN_INCLUDE_DIR="$cudnn_include")
    command -v nvcc >/dev/null || flags+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
  else
    cap=600
    dir=$repo/build-gpu-check-cpu
    flags=(-DFFR_ENABLE_CUDA=OFF)
  fi
  # The header-only dependencies, GoogleTest and OpenBLAS packed by gpu-pack.sh, where this
  # machine has no system copies.
  if [[ -f $pack/deps.tar.xz && -f $pack/libs.tar.xz ]]; then
    mkdir -p "$work/pack"
    tar -C "$work/pack" -xJf "$pack/libs.tar.xz" && tar -C "$work/pack" -xJf "$pack/deps.tar.xz"
    flags+=(-DCMAKE_PREFIX_PATH="$work/pack/prefix")
    export LD_LIBRARY_PATH=$work/pack/lib:$LD_LIBRARY_PATH LIBRARY_PATH=$work/pack/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
  fi
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  # On a GPU the build counts against the budget; with --cpu the budget starts after it.
  local limit=$cap
  [[ $mode == gpu ]] && { limit=$(left); ((limit > cap)) && limit=$cap; }
  local deadline=$(($(date +%s) + limit))
  {
    echo "== cmake configure (${flags[*]})"
    timeout "$limit" cmake -S "$repo" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "${flags[@]}" &&
      echo "== build (-j$(nproc))" &&
      timeout $((deadline - $(date +%s))) cmake --build "$dir" -j "$(nproc)" --target ffr_tests ffr-bench
  } >>"$logs/binaries.log" 2>&1 || return 1
  if [[ $mode == gpu ]] && ! grep -q "CUDA backend ON" "$logs/binaries.log"; then
    echo "the build has no CUDA backend (see the configure output above)" >>"$logs/binaries.log"
    return 1
  fi
  bench=$dir/ffr-bench tests=$dir/ffr_tests build_dir=$dir
}
t0=$(date +%s)
: >"$logs/binaries.log"
if [[ -n ${FFR_GPU_CHECK_BIN_DIR:-} ]]; then
  if binaries_start "$FFR_GPU_CHECK_BIN_DIR"; then
    bench=$FFR_GPU_CHECK_BIN_DIR/ffr-bench tests=$FFR_GPU_CHECK_BIN_DIR/ffr_tests route="given: $FFR_GPU_CHECK_BIN_DIR"
    build_dir=$FFR_GPU_CHECK_BIN_DIR
  fi
elif [[ $mode == gpu && -f $pack/bin.tar.xz && -f $pack/libs.tar.xz ]]; then
  # Prebuilt (built for sm_90 on the development machine): its non-CUDA libraries from the pack,
  # the CUDA ones from the wheels. If libstdc++ here is too old for it, try the packed one.
  mkdir -p "$work/prebuilt"
  if tar -C "$work/prebuilt" -xJf "$pack/bin.tar.xz" && tar -C "$work/prebuilt" -xJf "$pack/libs.tar.xz"; then
    [[ -f $pack/MANIFEST.txt ]] && cat "$pack/MANIFEST.txt" >>"$logs/binaries.log"
    export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$work/prebuilt/lib
    if binaries_start "$work/prebuilt/bin"; then
      route="prebuilt (.gpu-pack)"
    elif export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$work/prebuilt/lib-cxx && binaries_start "$work/prebuilt/bin"; then
      route="prebuilt (.gpu-pack, with its libstdc++)"
    fi
    [[ -n $route ]] && bench=$work/prebuilt/bin/ffr-bench tests=$work/prebuilt/bin/ffr_tests
  fi
  [[ -z $route ]] && echo "== the prebuilt binaries do not start here: building" >>"$logs/binaries.log"
elif [[ $mode == cpu && -x $repo/build/ffr-bench && -x $repo/build/ffr_tests ]]; then
  binaries_start "$repo/build" && bench=$repo/build/ffr-bench tests=$repo/build/ffr_tests route="build tree: $repo/build" \
    build_dir=$repo/build
fi
if [[ -z $route && -z ${FFR_GPU_CHECK_BIN_DIR:-} ]]; then
  if build_here; then
    route="built here ($build_dir$([[ $mode == gpu ]] && echo ", sm_$arch only"))"
  fi
fi
if [[ -n $bench ]]; then
  record binaries PASS $(($(date +%s) - t0)) "route: $route"
else
  record binaries FAIL $(($(date +%s) - t0)) "no working ffr-bench/ffr_tests (see logs/binaries.log)"
fi
have() { [[ -n $bench ]]; }
# With --cpu a missing build may have taken minutes on a small machine: the budget starts now.
[[ $mode == cpu ]] && start=$(date +%s)

# ---- 3. device report --------------------------------------------------------------------------
device_check() {
  "$bench" device || return 1
  if [[ $mode == gpu ]] && ! "$bench" device | grep -q "^  GPU: [^n]"; then
    echo "NOTE: the engine sees no GPU"
    return 1
  fi
  echo "NOTE: $("$bench" device | grep '^  GPU:' | sed 's/^ *//')"
}
if have; then run_step device 60 device_check; else skip device "no binaries"; fi

# ---- 4. every CUDA test --------------------------------------------------------------------------
# '*Cuda*' covers every CUDA suite and the CUDA tests of other suites
# (DataDeviceLoader.CudaBatchesMatchTheHostLoader, Inference.CudaMatchesCpu: bench/GPU_STATUS.md).
# Left out: the two checks of the no-GPU path, which skip where a GPU is present.
cuda_filter='*Cuda*:NumericGuard*-*CudaWithoutAGpuSaysWhy:*CudaRequestWithoutGpuIsAClearError'
cuda_tests() {
  "$tests" --gtest_filter="$cuda_filter" --gtest_output="xml:$logs/cuda_tests.xml"
  local rc=$? skipped ran
  skipped=$(grep -c '<skipped' "$logs/cuda_tests.xml" 2>/dev/null || echo 0)
  ran=$(grep -o 'tests="[0-9]*"' "$logs/cuda_tests.xml" 2>/dev/null | head -1 | grep -o '[0-9]*')
  if ((rc != 0)); then
    echo "NOTE: $(grep -c '^\[  FAILED  \] [A-Za-z]' "$logs/cuda_tests.log" 2>/dev/null) failed of ${ran:-?}; $skipped skipped"
    return 1
  fi
  # On a GPU, a test that skips for want of one means the engine did not see it.
  local no_gpu
  no_gpu=$(grep -cE '<skipped message="[^"]*(CUDA test skipped|no GPU|built without CUDA)' "$logs/cuda_tests.xml" 2>/dev/null)
  if [[ $mode == gpu && ${no_gpu:-0} -gt 0 ]]; then
    echo "NOTE: ${ran:-?} tests, but $no_gpu skipped for want of a GPU on a GPU machine"
    return 1
  fi
  echo "NOTE: ${ran:-?} tests, all passed$([[ $mode == cpu ]] && echo " or skipped ($skipped skipped: no GPU)")"
}
if have; then run_step cuda_tests "$([[ $mode == gpu ]] && echo 150 || echo 60)" cuda_tests; else skip cuda_tests "no binaries"; fi
if [[ $mode == gpu && -n $build_dir && -f $build_dir/CTestTestfile.cmake && $route == built* ]]; then
  run_step install_and_embed 90 ctest --test-dir "$build_dir" -R install_and_embed --output-on-failure
else
  skip install_and_embed "its GPU half needs a build tree made on this machine (route: ${route:-none})"
fi

# ---- 5. held-out parity against PyTorch (full size on the GPU) -------------------------------------
parity() {  # model
  local size=224 batch=16 device=cuda
  [[ $mode == cpu ]] && { batch=2; device=cpu; [[ $1 == resnet50 ]] && size=64; }
  python3 "$repo/tools/torch_parity.py" --bench "$bench" --model "$1" --out "$logs/parity" --work "$work/parity" --device $device \
    --batch $batch --image-size $size --precision fp32
  local rc=$?
  local j=$logs/parity/parity-$1.json
  if [[ -f $j ]]; then
    echo "NOTE: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
if "skipped" in d: print("skipped:", d["skipped"])
elif "errors" in d: print(("pass" if d["passed"] else "FAIL"), " ".join(f"{k} {v:.1e}" for k, v in d["errors"].items()))
else: print(d.get("error", "?")[:150])' "$j")"
  fi
  return $rc
}
if ! python3 -c 'import sys' 2>/dev/null; then
  skip parity_resnet50 "no python3"; skip parity_vit_b32 "no python3"
elif have; then
  run_step parity_resnet50 90 parity resnet50
  run_step parity_vit_b32 90 parity vit_b32
else
  skip parity_resnet50 "no binaries"; skip parity_vit_b32 "no binaries"
fi

# ---- 6. ffr-bench perf -------------------------------------------------------------------------
perf_one() {  # model precision
  local args=(--precision "$2" --json) model=$1
  if [[ $mode == gpu ]]; then
    args+=(--device cuda --batch-size 256 --image-size 224 --steps 20 --warmup 5)
  else
    # Tiny sizes: the same code path in seconds (resnet50 -> resnet_tiny, vit_b32 -> vit_tiny).
    local size=16
    model=resnet_tiny
    [[ $1 == vit_b32 ]] && model=vit_tiny size=8
    args+=(--device cpu --batch-size 4 --image-size $size --steps 2 --warmup 1 --threads 2)
  fi
  args+=(--model "$model")
  "$bench" perf "${args[@]}" || return 1
  # --json: the last line of stdout is one JSON object.
  python3 - "$model" "$2" "$(tail -1 "$logs/perf_${1}_$2.log")" "$logs/perf.jsonl" <<'PY'
import json, sys
model, precision, line, jsonl = sys.argv[1:]
try:
    d = json.loads(line)
except ValueError:
    print("NOTE: the last line is not JSON: " + line[:120])
    sys.exit(1)
d.setdefault("model", model)
d.setdefault("precision", precision)
open(jsonl, "a").write(json.dumps(d) + "\n")
print(f"NOTE: {d.get('images_per_s', 0):.1f} img/s, {d.get('ms_per_step_median', 0):.1f} ms/step, "
      f"peak {d.get('peak_device_bytes', 0) / 2**30:.2f} GiB")
PY
}
perf_precisions="tf32 bf16"
[[ $mode == cpu ]] && perf_precisions="fp32 bf16"
if ! have; then
  skip perf "no binaries"
elif ! "$bench" perf --help >"$logs/perf_help.log" 2>&1 || ! grep -q -- "--warmup" "$logs/perf_help.log"; then
  # (An unknown subcommand with --help prints the program's help and exits 0: look for perf's flags.)
  skip perf "perf: not available in this build"
else
  for model in resnet50 vit_b32; do
    for precision in $perf_precisions; do
      run_step "perf_${model}_$precision" "$([[ $mode == gpu ]] && echo 45 || echo 30)" perf_one "$model" "$precision"
    done
  done
fi

# ---- 7. a one-epoch demo (with a profiler window) ------------------------------------------------
fashion=/usr/share/datasets/fashion-mnist
demo() {
  local data=""
  if [[ -f $pack/data.tar.xz ]]; then
    mkdir -p "$work/data" && tar -C "$work/data" -xJf "$pack/data.tar.xz" && data=$(dirname "$(find "$work/data" -name manifest.csv | head -1)")
  fi
  if [[ -z $data || ! -f $data/manifest.csv ]]; then
    if [[ ! -e $fashion/train-images-idx3-ubyte.gz ]]; then
      echo "NOTE: no data: neither .gpu-pack/data.tar.xz nor Fashion-MNIST ($fashion)"
      return 77
    fi
    data=$work/sfmnist
    "$bench" prepare --out "$data" --image-size 16 --real-per-class 60 --synthetic-source-per-class 20 \
      --heldout-source-per-class 4 --synthetic-eval-per-group 2 --eval-per-class 40 --threads "$(nproc)" || return 1
  fi
  local args=(--manifest "$data/manifest.csv" --out "$logs/demo" --aug ffr --epochs 1 --stage1-epochs 1
              --lr 1e-3 --stage1-lr 1e-3 --profile-steps 2:3)
  if [[ $mode == gpu ]]; then
    args+=(--device cuda --model resnet26_small --batch-size 128 --workers 8)
  else
    args+=(--device cpu --model resnet_tiny --batch-size 16 --workers 2)
  fi
  "$bench" run "${args[@]}" || return 1
  echo "NOTE: $(grep -m1 'test WA' "$logs/demo.log" | sed 's/^ *//')"
}
if have; then run_step demo "$([[ $mode == gpu ]] && echo 90 || echo 60)" demo; else skip demo "no binaries"; fi

# ---- 8. compute-sanitizer on a fast subset --------------------------------------------------------
# The project's own kernels (cuDNN and cuBLAS run many times slower under the sanitizer); each tool
# is its own step, so a slow memcheck does not cost racecheck its turn.
sanitizer_filter='ElementwiseCuda.*:ReduceCuda.*:SoftmaxCuda.*:LayerNormCuda.*:CrossEntropyCuda.*:GroupCrossEntropyCuda.*:NonFiniteCheckCuda.*:FusedAdamCuda.*:PermuteCuda.*:PoolCuda.*'
for tool in memcheck racecheck; do
  if [[ $mode == cpu ]]; then
    skip "sanitizer_$tool" "needs a GPU"
  elif ! have; then
    skip "sanitizer_$tool" "no binaries"
  else
    FFR_TESTS=$tests FFR_SANITIZE_TOOLS=$tool FFR_SANITIZE_LOG_DIR=$logs \
      run_step "sanitizer_$tool" 75 bash "$repo/scripts/sanitize.sh" "$sanitizer_filter"
  fi
done

# ---- summary -------------------------------------------------------------------------------------
elapsed=$(($(date +%s) - start))
python3 - "$results" "$logs" "$out" "$mode" "$elapsed" "$route" "${gpu_name:-none}" "${compute_cap:-}" <<'EOF'
import json, os, sys
results, logs, out, mode, elapsed, route, gpu, cc = sys.argv[1:]
steps = []
for line in open(results):
    name, status, seconds, note = (line.rstrip("\n").split("\t") + [""])[:4]
    steps.append({"step": name, "status": status, "seconds": int(seconds), "note": note})
counts = {s: sum(1 for x in steps if x["status"] == s) for s in ("PASS", "FAIL", "TIMEOUT", "SKIP")}
perf = []
if os.path.exists(os.path.join(logs, "perf.jsonl")):
    for line in open(os.path.join(logs, "perf.jsonl")):
        try:
            perf.append(json.loads(line))
        except ValueError:
            pass
parity = {}
for m in ("resnet50", "vit_b32"):
    p = os.path.join(logs, "parity", f"parity-{m}.json")
    if os.path.exists(p):
        parity[m] = json.load(open(p))
lines = [f"gpu-check ({mode}): {counts['PASS']} passed, {counts['FAIL'] + counts['TIMEOUT']} failed, "
         f"{counts['SKIP']} skipped, {elapsed}s",
         f"GPU: {gpu}{' (compute ' + cc + ')' if cc else ''}   binaries: {route or 'none'}", ""]
for s in steps:
    lines.append(f"{s['status']:7s} {s['step']:24s} {s['seconds']:4d}s  {s['note'][:110]}")
if perf:
    lines += ["", "perf                      img/s   ms/step  peak GiB"]
    for d in perf:
        lines.append(f"  {d.get('model', '?'):11s} {d.get('precision', '?'):5s} {d.get('images_per_s', 0):9.1f} "
                     f"{d.get('ms_per_step_median', 0):9.1f} {d.get('peak_device_bytes', 0) / 2**30:9.2f}")
for m, d in parity.items():
    if "errors" in d:
        e = d["errors"]
        lines.append(f"parity {m}: {'pass' if d.get('passed') else 'FAIL'}  logits {e['eval_logits']:.1e}/"
                     f"{e['train_logits']:.1e}  loss {e['loss']:.1e}  grads {e['grad_total']:.1e} "
                     f"(worst {e['grad_worst']:.1e} {d.get('worst_gradient', '')})")
lines.append("")
lines.append("logs: " + os.path.join(out, "logs") + " (and logs.tar.gz)")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.txt"), "w").write(text)
json.dump({"mode": mode, "seconds": int(elapsed), "gpu": gpu, "compute_capability": cc, "route": route,
           "counts": counts, "steps": steps, "perf": perf, "parity": parity},
          open(os.path.join(out, "results.json"), "w"), indent=1)
print(text, end="")
EOF
status=0
grep -qP '\t(FAIL|TIMEOUT)\t' "$results" && status=1
[[ -f $out/summary.txt ]] || status=1
tar -C "$out" -czf "$out/logs.tar.gz" --exclude='*.safetensors' logs 2>/dev/null  # checkpoints stay out
# The device tool brings back at most 8 files from $OUT: there, keep the bundle, not the loose logs.
if [[ -n ${OUT:-} && $out == "$OUT"* ]]; then rm -rf "$logs"; fi
exit $status
