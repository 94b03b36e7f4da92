#!/usr/bin/env bash
# The command line's contract (ctest: cli_contract), for every registered subcommand:
#   - `--help` of each: no legacy flag name (--batch, --lrs), shared flags with one name and one
#     meaning (--device lists auto/cpu/cuda, --epochs says how FFR's stage 1 follows it, --seeds
#     only where runs are seeded, --freeze-bn takes false/true);
#   - errors: one style ("ffr-bench: error: ..."), exit 2 for usage errors (unknown flag, with the
#     nearest one suggested; bad values; negative or non-numeric integers such as --seeds -1; flags
#     that do not apply), 1 for runtime errors, 0 for --help and --version (which names the commit);
#   - with Fashion-MNIST installed: run's --epochs sets FFR stage 1 too, summary.json/md over seeds,
#     the engine block in config.json/result.json, an unwritable --out refused before training,
#     Ctrl-C -> exit 130 "resume from epoch N", and the rerun says it resumes.
# Usage: cli_test.sh FFR_BENCH
set -uo pipefail

bench=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-cli-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect CODE PATTERN ARGS...: exit code CODE and stderr (or stdout) matching PATTERN.
expect() {
  local code=$1 pattern=$2
  shift 2
  local status=0
  "$bench" "$@" >"$work/out" 2>"$work/err" || status=$?
  if [[ $status != "$code" ]]; then
    fail "ffr-bench $*: exit $status, expected $code"; cat "$work/err" >&2; return
  fi
  if ! grep -q -E -- "$pattern" "$work/err" "$work/out"; then
    fail "ffr-bench $*: output does not match '$pattern'"; cat "$work/err" "$work/out" >&2
  fi
}

# ---- every subcommand's --help -------------------------------------------------------------
"$bench" --help >"$work/help" || fail "--help: non-zero exit"
commands=$(awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' "$work/help")
[[ $(wc -w <<<"$commands") -ge 10 ]] || fail "found only these subcommands in --help: $commands"
for cmd in $commands; do
  "$bench" "$cmd" --help >"$work/h-$cmd" 2>&1 || { fail "$cmd --help: non-zero exit"; continue; }
  h=$work/h-$cmd
  grep -q -E -- '--batch([^-a-z]|$)' "$h" && fail "$cmd: legacy flag --batch (use --batch-size)"
  grep -q -E -- '--lrs\b' "$h" && fail "$cmd: legacy flag --lrs (use --lr)"
  if grep -q -E -- '--device\b' "$h"; then
    grep -E -- '--device\b' "$h" | grep -q 'auto,cpu,cuda' || fail "$cmd: --device does not list {auto,cpu,cuda}"
  fi
  if grep -q -E -- '--seeds\b' "$h" && [[ $cmd != run && $cmd != grid ]]; then
    fail "$cmd: --seeds is for the seeds of runs (run, grid); a data seed is --seed"
  fi
  if [[ $cmd == run || $cmd == grid ]]; then
    grep -q -E -- '--seed\b[^s]' "$h" && fail "$cmd: --seed (the runs' seeds are --seeds)"
    grep -A2 -E -- '--epochs\b' "$h" | tr '\n' ' ' | grep -q 'also ffr stage 1 unless --stage1-epochs' \
      || fail "$cmd: --epochs does not say that FFR stage 1 follows it"
    for flag in --lr --stage1-lr --stage1-epochs --batch-size --freeze-bn --image-size --max-train-samples \
                --weight-decay --workers --model --device --out --manifest; do
      grep -q -E -- "$flag\b" "$h" || fail "$cmd: no $flag"
    done
    grep -E -A1 -- '--freeze-bn\b' "$h" | tr '\n' ' ' | grep -q 'false,true' || fail "$cmd: --freeze-bn choices"
  fi
done
echo "   --help of: $(tr '\n' ' ' <<<"$commands")"

# ---- error style and exit codes --------------------------------------------------------------
echo "not,a,manifest" >"$work/bad.csv"
expect 0 'ffr-engine [0-9.]+ \(commit [0-9a-f]+(-dirty)?|commit unknown' --version
expect 2 '^ffr-bench: error: .*did you mean --batch-size\?' run --manifest "$work/bad.csv" --out y --batch 8
expect 2 "^ffr-bench: error: .*did you mean 'run'\?" runn
expect 2 '^ffr-bench: error: --manifest is required' run --out y
expect 2 "^ffr-bench: error: kernel-bench: --batch-size, .* must be >= 1" kernel-bench --batch-size -3 --device cpu
expect 2 "^ffr-bench: error: --seed: expected a whole number >= 0, got '-1'" loader-bench --manifest "$work/bad.csv" --seed -1
expect 2 "^ffr-bench: error: --epochs: expected a whole number, got '1.5'" grid --preset figure3 --manifest "$work/bad.csv" --out y --epochs 1.5
expect 2 '^ffr-bench: error: --model: bogus not in \{' run --manifest "$work/bad.csv" --out y --model bogus
expect 2 '^ffr-bench: error: --aug: bogus not in \{none,usb,asb,ffr\}' inspect --manifest x --aug bogus
expect 2 '^ffr-bench: error: .*did you mean --lr\?' grid --preset figure3 --manifest x --out y --lrs 1e-3
expect 1 '^ffr-bench: error: ' inspect --manifest "$work/bad.csv"
if grep -q 'filesystem error' "$work/err"; then fail "raw library text reached the user"; fi

# ---- runs on a tiny Spurious Fashion-MNIST ----------------------------------------------------
if [[ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  echo "   (runs skipped: dataset-fashion-mnist is not installed)"
else
  "$bench" prepare --out "$work/data" --image-size 16 --real-per-class 60 --synthetic-source-per-class 20 \
    --heldout-source-per-class 4 --synthetic-eval-per-group 2 --eval-per-class 40 --threads 2 >/dev/null 2>&1 \
    || fail "prepare"
  m=$work/data/manifest.csv
  common=(--manifest "$m" --ratio 0.9 --model resnet_tiny --batch-size 32 --device cpu --workers 1)
  expect 2 "^ffr-bench: error: --seeds: expected a whole number >= 0, got '-1'" run "${common[@]}" --out "$work/r" --seeds -1
  expect 2 "^ffr-bench: error: --seeds: expected a whole number >= 0, got 'abc'" run "${common[@]}" --out "$work/r" --seeds abc
  expect 2 '^ffr-bench: error: --groupdro-eta applies to --method groupdro only' run "${common[@]}" --out "$work/r" --groupdro-eta 0.1
  expect 2 '^ffr-bench: error: --freeze-bn applies to --aug ffr only' run "${common[@]}" --out "$work/r" --freeze-bn true
  expect 2 '^ffr-bench: error: --stage1-epochs applies to --aug ffr only' run "${common[@]}" --out "$work/r" --stage1-epochs 2
  touch "$work/file"
  expect 2 '^ffr-bench: error: --out: ' run "${common[@]}" --out "$work/file/sub"
  [[ ! -e $work/r ]] || fail "a refused command created its --out folder"

  # --epochs sets FFR's stage 1 too (as in grid), unless --stage1-epochs is given.
  expect 0 'summary: ' run "${common[@]}" --out "$work/r" --aug ffr --epochs 1 --seeds 0,1
  grep -q '"stage1_epochs": 1,' "$work/r/seed-0/config.json" || fail "run --aug ffr --epochs 1: stage 1 is not 1 epoch"
  [[ $(grep -c '"stage":"stage 1"' "$work/r/seed-0/metrics.jsonl") == 1 ]] \
    || fail "run --aug ffr --epochs 1: metrics.jsonl does not hold one stage-1 epoch"
  expect 0 'summary: ' run "${common[@]}" --out "$work/r2" --aug ffr --epochs 1 --stage1-epochs 2
  grep -q '"stage1_epochs": 2,' "$work/r2/seed-0/config.json" || fail "--stage1-epochs 2 not honoured"
  for f in summary.json summary.md; do [[ -s $work/r/$f ]] || fail "run over seeds wrote no $f"; done
  grep -q '"test_worst_group_accuracy"' "$work/r/summary.json" || fail "summary.json has no test WA"
  grep -q '"seeds": 2' "$work/r/summary.json" || fail "summary.json does not count 2 seeds"
  for f in seed-0/config.json seed-0/result.json summary.json; do
    grep -q '"git_commit"' "$work/r/$f" || fail "$f has no engine block"
  done
  grep -a -q 'git_commit' "$work/r/seed-0/best.safetensors" || fail "the checkpoint has no engine block"

  # probe-features (issue 19): a linear probe on the trained model's features, real vs synthetic.
  ck=$work/r/seed-0/best.safetensors
  expect 0 'source accuracy [0-9.]+% \(chance 50%\)' probe-features --checkpoint "$ck" --manifest "$m" --device cpu \
    --workers 1 --out "$work/pf"
  grep -q '"accuracy"' "$work/pf/probe_features.json" || fail "probe-features: no accuracy in probe_features.json"
  grep -q '<circle' "$work/pf/embedding.svg" || fail "probe-features: the embedding SVG has no points"
  expect 2 '^ffr-bench: error: --c: ' probe-features --checkpoint "$ck" --manifest "$m" --c -1
  expect 2 '^ffr-bench: error: --checkpoint is required' probe-features --manifest "$m"
  expect 2 '^ffr-bench: error: --checkpoint: ' probe-features --checkpoint "$work/none.safetensors" --manifest "$m"
  grep -q 'feature_probe_accuracy' "$work/r/seed-0/result.json" || fail "result.json has no feature_probe_accuracy"

  # grid --dry-run states FFR's stage-1 search (issue 19): its runs and their count.
  expect 0 'FFR stage-1 search runs over 2 stage-1 rates' grid --preset figure3 --manifest "$m" --out "$work/g" \
    --model resnet_tiny --image-size 0 --ratios 0.9 --lr 1e-3,1e-4 --seeds 0 --dry-run
  grep -c '(stage-1 search)' "$work/out" | grep -q '^2$' || fail "grid --dry-run does not list the 2 stage-1 search runs"
  [[ ! -e $work/g ]] || fail "grid --dry-run created its --out folder"

  # --synthetic agnostic (Table 5) needs the class-only-prompt pool: refused, naming it, before any
  # folder is made, by run and by grid (issue 19).
  "$bench" prepare --out "$work/data0" --image-size 16 --real-per-class 60 --synthetic-source-per-class 20 \
    --heldout-source-per-class 4 --synthetic-eval-per-group 2 --eval-per-class 40 --threads 2 \
    --agnostic-per-class 0 >/dev/null 2>&1 || fail "prepare --agnostic-per-class 0"
  expect 1 '^ffr-bench: error: .*manifest.csv: bias-agnostic synthetic data .*prompt_kind=agnostic' \
    run --manifest "$work/data0/manifest.csv" --ratio 0.9 --model resnet_tiny --aug ffr --synthetic agnostic --out "$work/a0"
  expect 1 'prompt_kind=agnostic' grid --preset table5 --manifest "$work/data0/manifest.csv" --model resnet_tiny \
    --image-size 0 --ratios 0.9 --lr 1e-3 --seeds 0 --out "$work/ga0"
  [[ ! -e $work/a0 && ! -e $work/ga0 ]] || fail "a refused --synthetic agnostic created its --out folder"

  # Ctrl-C: exit 130 with where a rerun resumes; the rerun says it resumes.
  "$bench" run "${common[@]}" --out "$work/int" --epochs 400 >"$work/int.out" 2>"$work/int.err" &
  pid=$!
  for _ in $(seq 1 100); do [[ -e $work/int/seed-0/resume.safetensors ]] && break; sleep 0.2; done
  kill -INT "$pid"
  status=0
  wait "$pid" || status=$?
  [[ $status == 130 ]] || { fail "Ctrl-C: exit $status, expected 130"; cat "$work/int.err" >&2; }
  grep -q -E 'ffr-bench: interrupted: rerun the same command to resume from epoch [0-9]+' "$work/int.err" \
    || { fail "Ctrl-C: no resume message"; cat "$work/int.err" >&2; }
  ls "$work/int/seed-0" | grep -q '\.tmp\.' && fail "Ctrl-C left a temporary file"
  [[ ! -e $work/int/seed-0/result.json ]] || fail "an interrupted run wrote result.json"
  timeout 5 "$bench" run "${common[@]}" --out "$work/int" --epochs 400 >"$work/int2.out" 2>&1
  grep -q 'resuming the unfinished run' "$work/int2.out" || { fail "the rerun does not say it resumes"; cat "$work/int2.out" >&2; }
fi

[[ $failures == 0 ]] || { echo "$failures failure(s)"; exit 1; }
echo "PASS"
