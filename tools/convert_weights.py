#!/usr/bin/env python3
"""Converts torchvision's resnet50 and timm's vit_base_patch32_224 weights to the safetensors file
that `ffr-bench run/grid --init` (and `ffr-bench eval`) read.

The engine names its tensors as torchvision and timm do (layers/resnet.h, layers/vit.h) and keeps
their layouts (conv weights OIHW, timm's fused qkv [3*dim, dim], patch_embed.proj as a conv
[dim, 3, 32, 32], cls_token [1, 1, dim], pos_embed [1, 50, dim], BatchNorm's int64
num_batches_tracked), so converting is: load the state dict into the library's own model (strict:
every name and shape checked by PyTorch itself), cast floating tensors to float32 (the engine's
parameter dtype; some published files are float16), and write it with the metadata the engine's
checkpoint reader expects.

Sources, one of:
  --checkpoint FILE      a .pth/.pt/.bin/.safetensors state dict the user has (a {"state_dict": ...}
                         or {"model": ...} wrapper and DataParallel's "module." prefix are unwrapped;
                         timm's checkpoint filter adapts old ViT layouts)
  --weights NAME         torchvision weights enum name (resnet50: IMAGENET1K_V1, IMAGENET1K_V2) or a
                         timm pretrained tag (vit_b32: e.g. augreg_in21k_ft_in1k); read from the
                         local torch/huggingface cache (nothing is downloaded when offline)
  --random               a random-initialised model (to check the pipeline without weights)

Needs torch, torchvision, timm, safetensors (a venv: python3 -m venv .venv && .venv/bin/pip install
torch torchvision timm safetensors). Never a dependency of the engine itself.

  python3 tools/convert_weights.py resnet50 --weights IMAGENET1K_V2 --out weights/resnet50.safetensors
  python3 tools/convert_weights.py vit_b32 --checkpoint vit_base_patch32_224.pth --out weights/vit_b32.safetensors
"""
import argparse
import os
import sys
import tempfile

# engine model name -> the library model it is
MODELS = {
    "resnet50": "torchvision resnet50",
    "vit_b32": "timm vit_base_patch32_224",
}
IMAGE_SIZE = 224


def build(model_name, weights, num_classes):
    if model_name == "resnet50":
        import torchvision
        return torchvision.models.resnet50(weights=weights, num_classes=num_classes) if weights is None \
            else torchvision.models.resnet50(weights=weights)
    import timm
    if weights is None:
        return timm.create_model("vit_base_patch32_224", pretrained=False, num_classes=num_classes)
    name = "vit_base_patch32_224" if weights in ("", "default") else f"vit_base_patch32_224.{weights}"
    return timm.create_model(name, pretrained=True)


def read_state_dict(path):
    import torch
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        sys.exit(f"convert_weights: {path}: not a state dict (got {type(state).__name__})")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def head_classes(model_name, state):
    key = "fc.weight" if model_name == "resnet50" else "head.weight"
    if key not in state:
        sys.exit(f"convert_weights: no {key} in the checkpoint: is it a {MODELS[model_name]} state dict?")
    return int(state[key].shape[0])


def convert(model_name, state_source, out, weights=None, random=False):
    import torch
    from safetensors.torch import save_file

    if state_source is not None:
        state = read_state_dict(state_source)
        model = build(model_name, None, head_classes(model_name, state))
        if model_name == "vit_b32":
            from timm.models.vision_transformer import checkpoint_filter_fn
            state = checkpoint_filter_fn(state, model)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            sys.exit(f"convert_weights: {state_source} is not a {MODELS[model_name]} state dict:\n"
                     f"  missing ({len(missing)}): {missing[:10]}\n  unexpected ({len(unexpected)}): {unexpected[:10]}")
    elif random:
        torch.manual_seed(0)
        model = build(model_name, None, 1000)
    else:
        model = build(model_name, weights, None)

    tensors = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        tensors[name] = (t.float() if t.is_floating_point() else t).contiguous().clone()
    classes = tensors["fc.weight" if model_name == "resnet50" else "head.weight"].shape[0]
    metadata = {"format": "ffr-engine classifier", "architecture": model_name, "num_classes": str(classes),
                "image_size": str(IMAGE_SIZE),
                "converted_from": state_source or (f"random init" if random else f"{MODELS[model_name]} {weights}")}
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    # Written beside the target and renamed over it: never a half-written file under its name.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".convert_weights.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise whoever shares the file
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return tensors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=sorted(MODELS), help="the engine's model name")
    p.add_argument("--out", required=True, help="safetensors file to write")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a state dict file you have (.pth, .pt, .bin, .safetensors)")
    src.add_argument("--weights", help="torchvision weights name / timm pretrained tag, from the local cache")
    src.add_argument("--random", action="store_true", help="random-initialised model (pipeline check)")
    a = p.parse_args(argv)
    tensors = convert(a.model, a.checkpoint, a.out, weights=a.weights, random=a.random)
    print(f"wrote {a.out}: {len(tensors)} tensors, {MODELS[a.model]} -> ffr-engine {a.model}")


if __name__ == "__main__":
    main()
