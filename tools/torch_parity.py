#!/usr/bin/env python3
"""Held-out parity of `ffr-bench forward` against PyTorch at full size (resnet50, vit_b32).

    python3 tools/torch_parity.py --bench build/ffr-bench --model resnet50 --out /tmp/parity \
        [--device cuda] [--batch 16] [--image-size 224] [--precision fp32] [--seed 0]

Builds the model in PyTorch with random weights (torchvision's resnet50 with random BatchNorm
statistics and affine parameters, so eval mode is really tested; timm's vit_base_patch32_224),
writes weights.safetensors (PyTorch names), input.safetensors and labels.safetensors, runs
`ffr-bench forward` on them in eval mode (logits) and in train mode with --backward (logits,
cross-entropy loss, every parameter's gradient), runs PyTorch on the same device in float32 with
TF32 off, and compares. Unlike tests/fixtures (small configs, committed outputs), nothing here is
made before the run: new random weights and inputs for every seed.

Error measure: relative L2, ||engine - torch|| / ||torch||, per tensor. Tolerances (PyTorch in
float32 without TF32 is the reference; --precision is what the engine runs in):
    precision  logits  loss   all gradients together  worst single gradient
    fp32       1e-3    1e-4   1e-2                    5e-2
    tf32       1e-2    1e-3   2e-2                    1e-1
    bf16       5e-2    1e-2   1e-1                    3e-1
float32 is held to 1e-3, not the 1e-5 of one op: both sides may pick Winograd or FFT convolutions
(errors near 1e-4 each) and 50 layers compound them; a wrong kernel gives errors near 1. The worst
single gradient is looser: a few small tensors (the first BatchNorm's, early biases) collect
rounding from the whole backward pass. NaN never passes.

Exit status: 0 all within tolerance, 1 something out of tolerance or a step failed, 77 the
model's Python package (torchvision or timm) is not installed. A one-line JSON summary goes last
on stdout and to OUT/parity-MODEL.json.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

TOLERANCES = {
    "fp32": {"logits": 1e-3, "loss": 1e-4, "grad_total": 1e-2, "grad_worst": 5e-2},
    "tf32": {"logits": 1e-2, "loss": 1e-3, "grad_total": 2e-2, "grad_worst": 1e-1},
    "bf16": {"logits": 5e-2, "loss": 1e-2, "grad_total": 1e-1, "grad_worst": 3e-1},
}


def build_model(name, image_size, torch):
    if name == "resnet50":
        from torchvision.models import resnet50
        model = resnet50()
        gen = torch.Generator().manual_seed(1234)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                    m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                    m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        return model
    if name == "vit_b32":
        import timm
        # img_size sizes the position embedding as the engine's make_model does for the input.
        return timm.create_model("vit_base_patch32_224", pretrained=False, img_size=image_size)
    raise SystemExit(f"torch_parity: unknown model {name} (resnet50 or vit_b32)")


def rel_l2(a, b, torch):
    a = a.double().flatten()
    b = b.double().flatten()
    if a.shape != b.shape:
        return math.inf
    if not torch.isfinite(a).all():
        return math.nan
    denom = b.norm().item()
    return (a - b).norm().item() / (denom if denom > 0 else 1.0)


def run_bench(cmd, log):
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n")
        f.flush()
        t = time.time()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        with open(log) as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{tail}")
    return time.time() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bench", required=True)
    p.add_argument("--model", required=True, choices=["resnet50", "vit_b32"])
    p.add_argument("--out", required=True, help="logs and the JSON summary")
    p.add_argument("--work", help="weights, inputs and outputs (hundreds of MB at full size); default --out")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--precision", default="fp32", choices=sorted(TOLERANCES))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    summary = {"model": a.model, "device": a.device, "batch": a.batch, "image_size": a.image_size,
               "precision": a.precision, "seed": a.seed, "passed": False}
    os.makedirs(a.out, exist_ok=True)
    summary_path = os.path.join(a.out, f"parity-{a.model}.json")

    def finish(code, **extra):
        summary.update(extra)
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=1)
        print(json.dumps(summary))
        sys.exit(code)

    try:
        import torch
        from safetensors.torch import load_file, save_file
    except ImportError as e:
        finish(77, skipped=f"{e}")
    try:
        model = build_model(a.model, a.image_size, torch)
    except ImportError as e:
        finish(77, skipped=f"{a.model} needs a package that is not installed: {e}")
    if a.device == "cuda" and not torch.cuda.is_available():
        finish(77, skipped="torch sees no GPU")

    torch.manual_seed(a.seed)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    model = model.float()
    gen = torch.Generator().manual_seed(a.seed + 1)
    x = torch.randn(a.batch, 3, a.image_size, a.image_size, generator=gen)
    classes = model.state_dict()["fc.weight" if a.model == "resnet50" else "head.weight"].shape[0]
    labels = torch.randint(0, classes, (a.batch,), generator=gen)
    work = a.work or a.out
    os.makedirs(work, exist_ok=True)
    paths = {k: os.path.join(work, f"{a.model}-{k}.safetensors") for k in
             ("weights", "input", "labels", "eval", "train")}
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, paths["weights"])
    save_file({"input": x.contiguous()}, paths["input"])
    save_file({"labels": labels.contiguous()}, paths["labels"])

    # The engine: eval mode (logits), then train mode with the backward pass.
    base = [a.bench, "forward", "--model", a.model, "--weights", paths["weights"], "--input", paths["input"],
            "--device", a.device]
    help_text = subprocess.run([a.bench, "forward", "--help"], capture_output=True, text=True).stdout
    if "--precision" in help_text:
        base += ["--precision", a.precision]
    elif a.precision != "fp32":
        finish(1, error=f"this ffr-bench forward has no --precision; cannot check {a.precision}")
    seconds = {}
    try:
        seconds["engine_eval"] = run_bench(base + ["--out", paths["eval"]], os.path.join(a.out, f"{a.model}-eval.log"))
        seconds["engine_train"] = run_bench(base + ["--out", paths["train"], "--train-mode", "--backward", "--labels",
                                                    paths["labels"]], os.path.join(a.out, f"{a.model}-train.log"))
    except RuntimeError as e:
        finish(1, error=str(e), seconds=seconds)

    # PyTorch on the same device, float32, TF32 off.
    dev = torch.device(a.device)
    model = model.to(dev)
    xd, ld = x.to(dev), labels.to(dev)
    t = time.time()
    model.eval()
    with torch.no_grad():
        ref_eval = model(xd).cpu()
    model.train()
    model.zero_grad()
    ref_logits = model(xd)
    ref_loss = torch.nn.functional.cross_entropy(ref_logits, ld)
    ref_loss.backward()
    ref_grads = {k: q.grad.detach().cpu() for k, q in model.named_parameters() if q.grad is not None}
    seconds["torch"] = time.time() - t

    eng_eval = load_file(paths["eval"])
    eng_train = load_file(paths["train"])
    tol = TOLERANCES[a.precision]
    errors = {
        "eval_logits": rel_l2(eng_eval["logits"], ref_eval, torch),
        "train_logits": rel_l2(eng_train["logits"], ref_logits.detach().cpu(), torch),
        "loss": rel_l2(eng_train["loss"], ref_loss.detach().cpu().reshape(1), torch),
    }
    missing = [k for k in ref_grads if f"grad.{k}" not in eng_train]
    diff_sq = ref_sq = 0.0
    worst_name, worst = "", 0.0
    for k, g in ref_grads.items():
        e = eng_train.get(f"grad.{k}")
        if e is None:
            continue
        r = rel_l2(e, g, torch)
        if not r <= worst:  # NaN propagates into worst
            worst_name, worst = k, r
        diff_sq += (e.double() - g.double()).norm().item() ** 2
        ref_sq += g.double().norm().item() ** 2
    errors["grad_total"] = math.sqrt(diff_sq / ref_sq) if ref_sq > 0 else math.nan
    errors["grad_worst"] = worst
    checks = {
        "eval_logits": errors["eval_logits"] <= tol["logits"],
        "train_logits": errors["train_logits"] <= tol["logits"],
        "loss": errors["loss"] <= tol["loss"],
        "grad_total": errors["grad_total"] <= tol["grad_total"],
        "grad_worst": errors["grad_worst"] <= tol["grad_worst"],
        "every_gradient_written": not missing,
    }
    passed = all(checks.values())
    for k, v in errors.items():
        limit = tol["logits"] if "logits" in k else tol[k]
        print(f"  {a.model} {k:13s} rel L2 {v:.3e}  (tolerance {limit:.0e})  {'ok' if v <= limit else 'FAIL'}"
              + (f"  [{worst_name}]" if k == "grad_worst" else ""))
    if missing:
        print(f"  {a.model}: the engine wrote no gradient for {len(missing)} parameter(s), e.g. {missing[:3]}")
    finish(0 if passed else 1, passed=passed, errors=errors, tolerances=tol, checks=checks,
           worst_gradient=worst_name, gradients=len(ref_grads), missing_gradients=missing[:10], seconds=seconds,
           torch=torch.__version__)


if __name__ == "__main__":
    main()
