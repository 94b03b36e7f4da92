#!/usr/bin/env bash
# ctest convert_weights: tools/convert_weights.py on random-initialised torchvision resnet50 and
# timm vit_base_patch32_224 (straight from the libraries, and through a saved .pth state dict, the
# form users bring), then the engine loads each with --init's loader (tests/convert_weights_test.cpp).
# Skips (exit 77) when no Python with torch, torchvision, timm and safetensors is found:
# $FFR_PYTHON, else <source>/.venv/bin/python.
set -euo pipefail
source_dir=$1
tests=$2
python=${FFR_PYTHON:-$source_dir/.venv/bin/python}
if ! "$python" -c "import torch, torchvision, timm, safetensors" 2>/dev/null; then
  echo "SKIP: no Python with torch, torchvision, timm and safetensors at $python (python3 -m venv .venv && .venv/bin/pip install torch torchvision timm safetensors, or set FFR_PYTHON)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
convert="$source_dir/tools/convert_weights.py"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
"$python" "$convert" resnet50 --random --out "$work/resnet50-random.safetensors"
"$python" "$convert" vit_b32 --random --out "$work/vit_b32-random.safetensors"
# A user's own .pth: a checkpoint dict around the state dict, DataParallel's "module." prefix.
"$python" - "$work" <<'PY'
import sys, torch, torchvision, timm
work = sys.argv[1]
torch.manual_seed(1)
r = torchvision.models.resnet50()
torch.save({"epoch": 90, "state_dict": {"module." + k: v for k, v in r.state_dict().items()}}, f"{work}/resnet50.pth")
v = timm.create_model("vit_base_patch32_224", pretrained=False)
torch.save(v.state_dict(), f"{work}/vit_b32.pth")
PY
"$python" "$convert" resnet50 --checkpoint "$work/resnet50.pth" --out "$work/resnet50-checkpoint.safetensors"
"$python" "$convert" vit_b32 --checkpoint "$work/vit_b32.pth" --out "$work/vit_b32-checkpoint.safetensors"
# A state dict of the other model is refused by name.
if "$python" "$convert" resnet50 --checkpoint "$work/vit_b32.pth" --out "$work/wrong.safetensors" 2>"$work/err"; then
  echo "FAIL: a ViT state dict converted as resnet50"; exit 1
fi
grep -q "no fc.weight" "$work/err" || { echo "FAIL: unclear error:"; cat "$work/err"; exit 1; }
FFR_CONVERTED_WEIGHTS=$work "$tests" --gtest_filter='ConvertWeights.*'
