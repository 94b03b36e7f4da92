#!/usr/bin/env bash
# ctest compare_pytorch: bench/compare_pytorch.py end to end on small configurations (--quick:
# resnet_demo training and inference, one round), so the yardstick script cannot rot between the
# runs that fill bench/RESULTS_cpu.md. Checks that the table it writes holds a positive ratio for
# every configuration and the commands it ran. Skips (exit 77) when no Python with torch,
# torchvision and timm is found: $FFR_PYTHON, else <source>/.venv/bin/python.
# Usage: compare_pytorch.sh SOURCE_DIR FFR_BENCH
set -euo pipefail
source_dir=$1
bench=$2
python=${FFR_PYTHON:-$source_dir/.venv/bin/python}
if ! "$python" -c "import torch, torchvision, timm" 2>/dev/null; then
  echo "SKIP: no Python with torch, torchvision and timm at $python (python3 -m venv .venv && .venv/bin/pip install torch torchvision timm, or set FFR_PYTHON)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ffr-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$python" "$source_dir/bench/compare_pytorch.py" --bench "$bench" --quick --threads 1 --out "$work/RESULTS.md"
"$python" - "$work/RESULTS.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rows = [l for l in text.splitlines() if l.startswith(("| train |", "| inference |")) and "**" in l]
assert len(rows) == 2, f"want 2 table rows, got {len(rows)}:\n{text}"
for row in rows:
    ratio = float(re.search(r"\*\*([0-9.]+)\*\*", row).group(1))
    assert 0 < ratio < 100, row
api = rows[1].rstrip(" |").rsplit("|", 1)[1].strip()
assert float(api) > 0, f"inference row lacks its API / perf ratio: {rows[1]}"
assert "## Commands" in text and "perf --model resnet_demo" in text and "--torch-worker" in text, text
PY
echo "compare_pytorch: OK"
