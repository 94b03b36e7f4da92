#!/usr/bin/env python3
"""The engine against PyTorch eager, step for step, on the same machine in one run.

    python3 bench/compare_pytorch.py [--bench build/ffr-bench] [--device cpu|cuda] [--threads N]
        [--rounds R] [--steps K] [--warmup W] [--config MODE:MODEL:BATCH:SIZE ...] [--quick]
        [--out FILE] [--dry-run]

For each configuration it times `ffr-bench perf ... --json` and the same step in PyTorch eager
(same model, batch, image size, class count, thread count; training is forward, cross-entropy,
backward and Adam with the engine's learning rate and coupled L2 weight decay; inference is an
eval-mode forward pass under no_grad), each in its own subprocess so neither warms the other's
caches or allocator. The two sides alternate, engine then PyTorch, for R rounds, so a machine
that gets busier or cooler mid-run penalises both alike. Inference configurations are timed a
third way, through the embedding API (`perf --inference --api`, InferenceModel::classify_batch on
8-bit images), to show the API adds nothing to the forward pass.

Reported per side: images/s from the median step time over all rounds' timed steps (the median
resists a stray slow step on a shared machine), the min and max step, and the process's max RSS.
Ratio = engine images/s / PyTorch images/s (> 1: the engine is faster).

Writes bench/RESULTS_cpu.md (or RESULTS_gpu.md with --device cuda; --out overrides): the table,
the machine (CPU model, cores, GPU), thread count, library versions (the engine's --version,
torch, torchvision, timm), and every command run, so the numbers can be made again.

Installs nothing. PyTorch is the yardstick, not a dependency: get it into a virtual environment
with `python3 -m venv .venv && .venv/bin/pip install torch torchvision timm` and run this script
with .venv/bin/python3. Exit status 77 when torch, torchvision or timm is missing.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

# The configurations (issue 13): training at the demo's and the paper's sizes, inference
# at batch 1 and 16.
DEFAULT_CONFIGS = [
    "train:resnet50:32:112",
    "train:vit_b32:16:224",
    "train:resnet_demo:128:32",
    "inference:resnet50:1:224",
    "inference:resnet50:16:224",
    "inference:vit_b32:1:224",
    "inference:vit_b32:16:224",
]
QUICK_CONFIGS = ["train:resnet_demo:32:32", "inference:resnet_demo:8:32"]
LEARNING_RATE = 1e-4  # ffr::PerfConfig's defaults
WEIGHT_DECAY = 1e-5
MISSING_TORCH = 77


def parse_config(text):
    parts = text.split(":")
    if len(parts) != 4 or parts[0] not in ("train", "inference"):
        raise SystemExit(f"compare_pytorch: --config {text!r}: want MODE:MODEL:BATCH:SIZE, MODE train or inference")
    try:
        batch, size = int(parts[2]), int(parts[3])
    except ValueError:
        raise SystemExit(f"compare_pytorch: --config {text!r}: BATCH and SIZE must be integers")
    if batch < 1 or size < 1:
        raise SystemExit(f"compare_pytorch: --config {text!r}: BATCH and SIZE must be positive")
    return {"mode": parts[0], "model": parts[1], "batch": batch, "size": size}


# ---- the PyTorch side (runs in a subprocess: --torch-worker) ----

def torch_model(name, classes, size):
    import torch
    from torch import nn
    from torchvision.models.resnet import Bottleneck

    class SmallResNet(nn.Module):
        """torchvision Bottleneck stages of the given widths, as the engine's resnet_demo /
        resnet_tiny (layers/model_zoo.cpp): torchvision's 7x7 stem + max pool, or a 3x3 stem."""

        def __init__(self, blocks, width, small_stem):
            super().__init__()
            if small_stem:
                stem = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            else:
                stem = [nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                        nn.MaxPool2d(3, 2, 1)]
            layers, inplanes = stem, width
            for s, n in enumerate(blocks):
                planes = width << s
                for b in range(n):
                    stride = 2 if (b == 0 and s > 0) else 1
                    down = None
                    if stride != 1 or inplanes != planes * 4:
                        down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                             nn.BatchNorm2d(planes * 4))
                    layers.append(Bottleneck(inplanes, planes, stride, down))
                    inplanes = planes * 4
            self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
            self.fc = nn.Linear(inplanes, classes)

        def forward(self, x):
            return self.fc(self.body(x))

    if name == "resnet50":
        from torchvision.models import resnet50
        return resnet50(num_classes=classes)
    if name == "resnet_demo":
        return SmallResNet([1, 1, 1, 1], 16, small_stem=False)
    if name == "resnet_tiny":
        return SmallResNet([1, 1], 4, small_stem=True)
    if name == "vit_b32":
        import timm
        return timm.create_model("vit_base_patch32_224", pretrained=False, num_classes=classes, img_size=size)
    raise SystemExit(f"compare_pytorch: no PyTorch twin for model {name!r} (resnet50, vit_b32, resnet_demo, "
                     "resnet_tiny)")


def torch_worker(a):
    import resource
    import time
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    if cuda:
        tf32 = a.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    model = torch_model(a.model, a.num_classes, a.image_size).to(device)
    images = torch.randn(a.batch, 3, a.image_size, a.image_size, device=device)
    labels = torch.randint(0, a.num_classes, (a.batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")
    if a.mode == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model(images), labels)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad(), autocast:
                model(images)

    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        events = [torch.cuda.Event(enable_timing=True) for _ in range(a.steps + 1)]
        events[0].record()
        for i in range(a.steps):
            step()
            events[i + 1].record()
        torch.cuda.synchronize()  # the window's only wait, as the engine's perf
        step_ms = [events[i].elapsed_time(events[i + 1]) for i in range(a.steps)]
    else:
        step_ms = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            step()
            step_ms.append((time.perf_counter() - t0) * 1000.0)
    print(json.dumps({
        "step_ms": step_ms,
        "threads": torch.get_num_threads(),
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_device_bytes": torch.cuda.max_memory_allocated() if cuda else 0,
    }))


# ---- the driver ----

def last_json_line(text, what):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{what}: no JSON line in its output:\n{text[-2000:]}")


def run(cmd, what, env=None):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}: {shlex.join(cmd)}\n{proc.stderr[-3000:]}")
    return last_json_line(proc.stdout, what)


def engine_cmd(a, c, api=False):
    cmd = [a.bench, "perf", "--model", c["model"], "--batch-size", str(c["batch"]), "--image-size", str(c["size"]),
           "--num-classes", str(a.num_classes), "--device", a.device, "--precision", a.precision,
           "--threads", str(a.threads), "--steps", str(a.steps), "--warmup", str(a.warmup), "--json"]
    if c["mode"] == "inference":
        cmd.append("--inference")
    if api:
        cmd.append("--api")
    return cmd


def torch_cmd(a, c):
    return [sys.executable, os.path.abspath(__file__), "--torch-worker", "--mode", c["mode"], "--model", c["model"],
            "--batch", str(c["batch"]), "--image-size", str(c["size"]), "--num-classes", str(a.num_classes),
            "--device", a.device, "--precision", a.precision, "--threads", str(a.threads),
            "--steps", str(a.steps), "--warmup", str(a.warmup)]


def summarise(batch, step_ms):
    median = statistics.median(step_ms)
    return {"images_per_s": batch / (median / 1000.0), "ms_median": median, "ms_min": min(step_ms),
            "ms_max": max(step_ms)}


def versions(a):
    out = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "timm"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    proc = subprocess.run([a.bench, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out["engine"] = proc.stdout.strip()
    return out


def machine(a):
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "os": platform.platform()}
    if a.device == "cuda":
        try:
            import torch
            info["gpu"] = torch.cuda.get_device_name(0)
        except Exception as e:  # recorded, not fatal: the engine's --version names its GPU too
            info["gpu"] = f"unknown ({e})"
    return info


def ratio(x, y):
    return x / y if y > 0 else float("nan")


def write_report(a, rows, commands, info, vers, started):
    lines = [f"# The engine against PyTorch eager on the {'GPU' if a.device == 'cuda' else 'CPU'}", "",
             f"Made by `bench/compare_pytorch.py` on {started} (UTC): one run, engine and PyTorch alternating "
             f"for {a.rounds} round(s), {a.warmup} warm-up + {a.steps} timed step(s) per side and round, "
             "each side in its own process.", "",
             f"- Machine: {info['cpu']}, {info['cores']} core(s) available" +
             (f"; GPU {info.get('gpu')}" if a.device == "cuda" else "") + f"; {info['os']}",
             f"- Device `{a.device}`, precision `{a.precision}`, {a.threads} compute thread(s) on both sides, "
             f"{a.num_classes} classes, Adam lr {LEARNING_RATE} with coupled L2 {WEIGHT_DECAY} (training)",
             f"- Engine: `{vers['engine'].splitlines()[0] if vers['engine'] else '?'}`",
             f"- PyTorch {vers['torch']}, torchvision {vers['torchvision']}, timm {vers['timm']}, "
             f"Python {vers['python']}", "",
             "images/s from the median step over all rounds; ratio = engine / PyTorch (> 1: the engine is "
             "faster). API = `perf --inference --api` (InferenceModel::classify_batch on 8-bit images) / "
             "`perf --inference`.", "",
             "| mode | model | batch | px | engine img/s | PyTorch img/s | ratio | engine ms (med/min/max) | "
             "PyTorch ms (med/min/max) | max RSS engine / PyTorch (MiB) | API / perf |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e, t = r["engine"], r["torch"]
        api = f"{r['api_ratio']:.2f}" if r.get("api_ratio") is not None else "-"
        lines.append(f"| {r['mode']} | {r['model']} | {r['batch']} | {r['size']} | {e['images_per_s']:.1f} | "
                     f"{t['images_per_s']:.1f} | **{r['ratio']:.2f}** | {e['ms_median']:.0f} / {e['ms_min']:.0f} / "
                     f"{e['ms_max']:.0f} | {t['ms_median']:.0f} / {t['ms_min']:.0f} / {t['ms_max']:.0f} | "
                     f"{r['engine_rss'] / 2**20:.0f} / {r['torch_rss'] / 2**20:.0f} | {api} |")
    extra = [r for r in rows if r.get("engine_cpu")]
    if extra:
        lines += ["", "Engine CPU time over its timed windows (getrusage, all rounds): the kernel's share and "
                  "page faults of steady steps.", "",
                  "| mode | model | batch | px | user s | kernel s | kernel share | minor faults per step |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in extra:
            u, s, f, n = r["engine_cpu"]
            lines.append(f"| {r['mode']} | {r['model']} | {r['batch']} | {r['size']} | {u:.2f} | {s:.2f} | "
                         f"{100 * ratio(s, u + s):.1f}% | {f / n:.0f} |")
    planned = [r for r in rows if r.get("plan")]
    if planned:
        lines += ["", "Engine inference through a prepared plan (`layers/inference_plan.h`; what `InferenceModel` "
                  "runs; `FFR_INFERENCE_PLAN=off` turns it off), where PyTorch runs eager mode:", ""]
        lines += [f"- {r['model']} batch {r['batch']}: {r['plan']}" for r in planned]
    lines += ["", "Max RSS is the whole process's, shared libraries included (both sides map CUDA's); the "
              "engine's own tensors peak lower (`peak_host_bytes` in its JSON).", "",
              "## Commands", "", "```"] + [shlex.join(c) for c in commands] + ["```", ""]
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, a.out)  # atomically: a killed run leaves the last table whole


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--bench", default=os.path.join(here, "..", "build", "ffr-bench"))
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default=None,
                   help="default: fp32 on the CPU, tf32 on CUDA")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="compute threads on both sides (default: the cores this process may use)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--config", action="append", default=None, metavar="MODE:MODEL:BATCH:SIZE",
                   help="replaces the default list; repeatable")
    p.add_argument("--quick", action="store_true", help="small configurations, 1 round, 1+2 steps (a smoke test)")
    p.add_argument("--no-api", action="store_true", help="skip the embedding-API timing of inference rows")
    p.add_argument("--out", default=None)
    p.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    # The worker's own flags.
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--image-size", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.precision is None:
        a.precision = "tf32" if a.device == "cuda" else "fp32"
    for name in ("threads", "rounds", "steps", "num_classes"):
        if getattr(a, name) < 1:
            raise SystemExit(f"compare_pytorch: --{name.replace('_', '-')} must be >= 1")
    if a.warmup < 0:
        raise SystemExit("compare_pytorch: --warmup must be >= 0")
    if a.torch_worker:
        return torch_worker(a)

    if a.quick:
        a.rounds, a.steps, a.warmup = 1, 2, 1
    configs = [parse_config(c) for c in (a.config or (QUICK_CONFIGS if a.quick else DEFAULT_CONFIGS))]
    a.out = a.out or os.path.join(here, "RESULTS_gpu.md" if a.device == "cuda" else "RESULTS_cpu.md")
    plan = []
    for c in configs:
        for _ in range(a.rounds):
            plan.append(("engine", c, engine_cmd(a, c)))
            plan.append(("torch", c, torch_cmd(a, c)))
            if c["mode"] == "inference" and not a.no_api:
                plan.append(("api", c, engine_cmd(a, c, api=True)))
    if a.dry_run:
        for _, _, cmd in plan:
            print(shlex.join(cmd))
        return 0
    try:
        import torch, torchvision, timm  # noqa: F401  (the worker needs all three)
    except ImportError as e:
        print(f"compare_pytorch: skipped: {e}; see this script's docstring for the venv", file=sys.stderr)
        return MISSING_TORCH
    if not os.access(a.bench, os.X_OK):
        raise SystemExit(f"compare_pytorch: --bench {a.bench}: not an executable (build the engine first)")

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    info, vers = machine(a), versions(a)
    collected = {}
    env = dict(os.environ)
    for i, (side, c, cmd) in enumerate(plan):
        key = (c["mode"], c["model"], c["batch"], c["size"])
        print(f"[{i + 1}/{len(plan)}] {side}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
        out = run(cmd, side, env)
        if a.device == "cpu" and out.get("threads") != a.threads:  # the comparison would be unfair
            raise RuntimeError(f"{side} ran with {out.get('threads')} thread(s), not {a.threads}: {shlex.join(cmd)}")
        collected.setdefault(key, {}).setdefault(side, []).append(out)
    rows = []
    for c in configs:
        key = (c["mode"], c["model"], c["batch"], c["size"])
        got = collected[key]
        e = summarise(c["batch"], [ms for o in got["engine"] for ms in o["step_ms"]])
        t = summarise(c["batch"], [ms for o in got["torch"] for ms in o["step_ms"]])
        row = dict(c, engine=e, torch=t, ratio=ratio(e["images_per_s"], t["images_per_s"]),
                   engine_rss=max(o["max_rss_bytes"] for o in got["engine"]),
                   torch_rss=max(o["max_rss_bytes"] for o in got["torch"]))
        if "api" in got:
            api = summarise(c["batch"], [ms for o in got["api"] for ms in o["step_ms"]])
            row["api_ratio"] = ratio(api["images_per_s"], e["images_per_s"])
        if all("cpu_user_s" in o for o in got["engine"]):
            row["engine_cpu"] = (sum(o["cpu_user_s"] for o in got["engine"]),
                                 sum(o["cpu_system_s"] for o in got["engine"]),
                                 sum(o["minor_page_faults"] for o in got["engine"]),
                                 sum(len(o["step_ms"]) for o in got["engine"]))
        plans = {o.get("inference_plan", "") for o in got["engine"]} - {""}
        if plans:
            row["plan"] = sorted(plans)[0]
        rows.append(row)
        print(f"{c['mode']:9s} {c['model']:12s} b{c['batch']:<4d} {c['size']:4d}px  engine "
              f"{e['images_per_s']:8.1f} img/s  torch {t['images_per_s']:8.1f} img/s  ratio {row['ratio']:.2f}"
              + (f"  api/perf {row['api_ratio']:.2f}" if "api_ratio" in row else ""), flush=True)
    write_report(a, rows, [cmd for _, _, cmd in plan], info, vers, started)
    print(f"compare_pytorch: wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
