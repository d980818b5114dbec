"""Training-speed benchmark: bnnbench's engine against an official-style loop and full precision.

For one (arch, binarizer) three loops train the same network on CIFAR-10 and are timed alike:
  engine    bnnbench.train.train_step over bnnbench.data's on-device batches (the code that
            train_cell runs: channels_last, bf16 autocast on CUDA, optional torch.compile);
  fp32      the same engine and backbone with the registry's `fp` entry in every binary conv
            (weight(w) = w, activation(x) = x): what the binarizer itself costs;
  official  the loop the official code bases wrote: torchvision CIFAR10 + per-image PIL
            transforms + DataLoader(workers, shuffle), fp32, no channels_last, no compile,
            loss.item() and top-1 read every step (their AverageMeters), and the binarizers'
            fused pieces composed from eager torch ops as the official codes write them
            (`bnnbench.nn.composed_autograd`: ReCU's and BiPer's torch.var normalisation,
            surrogate gradients op by op).
Method: `warmup` steps (compilation, allocator, worker start-up) are run and discarded, then
`steps` steps are timed as one block (one device synchronisation at each end, none in between
for the engine): by CUDA events on a GPU, with the wall clock beside them, and by the wall
clock on a CPU (bnnbench.timing). Each measurement runs in its own Python process (unless
`isolate=False`) so that peak memory (CUDA: max_memory_allocated; CPU: the process's peak RSS,
DataLoader workers not included) and compile caches belong to that measurement alone.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import __version__, recipe as recipes, registry
from .cell import CellConfig
from .data import NORMALIZE, load_dataset
from .errors import BnnbenchError
from .models import build_model, list_archs
from .timing import time_steps
from .train import train_step

KINDS = ("engine", "fp32", "official")
DEFAULT_ARCHS = ("resnet20", "resnet18", "vgg_small")


def _binarizer_spec(kind: str, binarizer: str):
    """The fp32 kind runs the registry's `fp` entry: the very same BinaryConv2d, backbone and
    training step as a binarizer, so engine/fp32 isolates what binarisation costs."""
    return "fp" if kind == "fp32" else binarizer


def _recipe(arch: str, binarizer: Any, batch_size: int | None) -> tuple[str, dict]:
    """The cell's last stage (the fully binary one) and its recipe; batch size overridden."""
    stage, recipe = recipes.stage_recipes(CellConfig(dataset="cifar10", arch=arch,
                                                     binarizer=binarizer))[-1]
    if batch_size is not None:
        recipe["batch_size"] = batch_size
    return stage, recipe


def _model(arch: str, binarizer: Any, device: torch.device, stage: str,
           recipe: dict) -> torch.nn.Module:
    """The model in `stage` with that stage's binarizer values, as train_cell trains it."""
    from . import nn as bnn

    torch.manual_seed(0)
    model = build_model(arch, binarizer, family="cifar").to(device)
    bnn.set_binarizer_params(model, recipe["binarizer"])
    bnn.set_stage(model, stage)
    bnn.set_progress(model, 0.5)
    return model.train()


def _cycle(make_iter):
    """An endless stream of batches, starting a new epoch when one runs out."""
    epoch = 0
    while True:
        yield from make_iter(epoch)
        epoch += 1


def measure_engine(arch: str, binarizer: Any, *, device: torch.device, batch_size: int | None,
                   warmup: int, steps: int, repeats: int, compile: bool,
                   data_dir: str | None, profile: bool = False) -> dict:
    """bnnbench's engine: on-device data and train.train_step, as train_cell runs them."""
    stage, recipe = _recipe(arch, binarizer, batch_size)
    data = load_dataset("cifar10", data_dir=data_dir, device=device,
                        normalize=recipe["normalize"])
    model = _model(arch, binarizer, device, stage, recipe).to(
        memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    optimizer = recipes.make_optimizer(model, recipe)
    batches = _cycle(lambda e: data.train_batches(recipe["batch_size"],
                                                  torch.Generator().manual_seed(e)))
    loss_sum = torch.zeros((), device=device)

    def step(x, y):
        nonlocal loss_sum
        loss, _ = train_step(model, forward, optimizer, x, y)
        loss_sum = loss_sum + loss   # stays on the device, as in train_cell
    out = time_steps(step, batches, warmup, steps, device, repeats, profile)
    return {**out, "batch_size": recipe["batch_size"], "stage": stage,
            "final_loss_sum": float(loss_sum)}


class _CIFAR10Folder:
    """torchvision's CIFAR10 on a local cifar-10-batches-py folder, without its md5 check
    (a CIFAR-10 rebuilt from the JPEG archive has the same content but other file hashes)."""

    @staticmethod
    def make(root: Path, transform):
        import torchvision

        class CIFAR10(torchvision.datasets.CIFAR10):
            def _check_integrity(self) -> bool:
                return True

            def _load_meta(self) -> None:   # the class names are not needed to train
                self.classes = [str(i) for i in range(10)]
                self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        return CIFAR10(str(root), train=True, download=False, transform=transform)


def measure_official(arch: str, binarizer: Any, *, device: torch.device,
                     batch_size: int | None, warmup: int, steps: int, repeats: int,
                     workers: int, data_dir: str | None, profile: bool = False) -> dict:
    """The loop of the official codes (IR-Net, ReCU, BiPer CIFAR training scripts), written
    here from their structure: per-image PIL transforms in DataLoader workers, fp32, per-step
    host reads of loss and top-1."""
    import torchvision.transforms as T

    from . import nn as bnn
    from .data import cifar10

    stage, recipe = _recipe(arch, binarizer, batch_size)
    mean, std = NORMALIZE[recipe["normalize"] or "cifar"]
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(mean, std)])
    root = cifar10.find(data_dir).parent
    dataset = _CIFAR10Folder.make(root, transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=recipe["batch_size"], shuffle=True,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)
    model = _model(arch, binarizer, device, stage, recipe)
    optimizer = recipes.make_optimizer(model, recipe)
    meters = {"loss": 0.0, "top1": 0.0}

    def step(x, y):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with bnn.composed_autograd():       # their per-sample torch.var, division and sign
            logits = model(x)
        loss = F.cross_entropy(logits, y)
        extra = bnn.extra_loss(model)       # BiPer's official CIFAR code adds its regulariser
        if extra is not None:
            loss = loss + extra
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        meters["loss"] += loss.item()                                  # host sync, as theirs
        meters["top1"] += (logits.argmax(1) == y).float().mean().item()
    out = time_steps(step, _cycle(lambda e: loader), warmup, steps, device, repeats, profile)
    return {**out, "batch_size": recipe["batch_size"], "stage": stage, "workers": workers}


def measure(kind: str, arch: str, binarizer: str, *, device: str = "cpu",
            batch_size: int | None = None, warmup: int = 2, steps: int = 5,
            repeats: int = 1, compile: bool = False, workers: int = 2, threads: int | None = None,
            data_dir: str | None = None, plugins=(), profile: bool = False) -> dict:
    """One measurement (in this process): `kind` is engine | fp32 | official."""
    registry.load_plugins(plugins)
    if kind not in KINDS:
        raise BnnbenchError(f"unknown benchmark kind '{kind}'; known: {', '.join(KINDS)}")
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    common = dict(device=dev, batch_size=batch_size, warmup=warmup, steps=steps,
                  repeats=repeats, data_dir=data_dir, profile=profile)
    spec = _binarizer_spec(kind, binarizer)
    if kind == "official":
        out = measure_official(arch, spec, workers=workers, **common)
    else:
        out = measure_engine(arch, spec, compile=compile, **common)
    return {"kind": kind, "arch": arch, "binarizer": binarizer if kind != "fp32" else "fp32",
            "compile": compile and kind != "official", "warmup": warmup, "steps": steps,
            "repeats": repeats,
            "threads": torch.get_num_threads(), **out}


def _measure_isolated(args: dict) -> dict:
    """`measure(**args)` in a fresh Python process (its own peak memory and caches)."""
    code = ("import json, sys; from bnnbench.bench import measure; "
            "print('BENCH ' + json.dumps(measure(**json.loads(sys.argv[1]))))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True,
                          text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise BnnbenchError(f"benchmark {args['kind']} {args['arch']}/{args['binarizer']} failed: "
                        + " | ".join(tail))


def environment(device: str) -> dict:
    dev = torch.device(device)
    if dev.type == "cuda":
        name = f"{torch.cuda.get_device_name(dev)}, CUDA {torch.version.cuda}"
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return {"device": device, "device_name": name, "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(),
            "bnnbench": __version__, "threads": torch.get_num_threads(),
            "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat()}


def run_benchmark(archs, binarizers, *, device: str = "cpu", batch_size: int | None = None,
                  warmup: int = 2, steps: int = 5, repeats: int = 1, rounds: int = 1,
                  compile: bool = False, workers: int = 2,
                  threads: int | None = None, kinds=KINDS, data_dir: str | None = None,
                  plugins=(), isolate: bool = True, profile: bool = False, log=print) -> dict:
    """Every kind for every (arch, binarizer); fp32 is measured once per arch.

    With rounds > 1 the whole list for an arch is measured again, in reverse order every other
    round, so a machine that speeds up or slows down over minutes shifts every kind alike; each
    row keeps the median over its rounds (`images_per_s_rounds` lists them)."""
    for arch in archs:
        if arch not in list_archs("cifar"):
            raise BnnbenchError(f"unknown CIFAR arch '{arch}' for bench; known: "
                                f"{', '.join(list_archs('cifar'))}")
    for name in binarizers:
        registry.get(name)   # a BnnbenchError naming the known ones
    if threads:
        torch.set_num_threads(threads)
    env = environment(device)
    rows = []
    for arch in archs:
        todo = [(k, b) for b in binarizers for k in kinds if k != "fp32"]
        if "fp32" in kinds:
            todo.insert(0, ("fp32", "fp32"))
        by_round: dict[tuple[str, str], list[dict]] = {key: [] for key in todo}
        for r in range(rounds):
            for kind, binarizer in (todo if r % 2 == 0 else todo[::-1]):
                args = dict(kind=kind, arch=arch, binarizer=binarizer, device=device,
                            batch_size=batch_size, warmup=warmup, steps=steps, repeats=repeats,
                            compile=compile, workers=workers, threads=threads,
                            data_dir=data_dir, plugins=list(plugins),
                            profile=profile and r == 0)
                row = _measure_isolated(args) if isolate else measure(**args)
                log(f"{arch:10s} {row['binarizer']:9s} {kind:9s} {row['images_per_s']:9.1f} "
                    f"img/s peak {row['peak_mem_mb']:8.0f} MiB (round {r + 1}/{rounds})")
                by_round[(kind, binarizer)].append(row)
        rows += [_median_round(by_round[key]) for key in todo]
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"env": env, "settings": {"batch_size": batch_size, "warmup": warmup, "steps": steps,
                                     "repeats": repeats, "rounds": rounds,
                                     "compile": compile, "workers": workers, "threads": threads,
                                     "kinds": list(kinds), "isolated": isolate,
                                     "profile": profile},
            "rows": rows, "summary": summarise(rows)}


def _median_round(rows: list[dict]) -> dict:
    """One row from a measurement's rounds: the median throughput, the highest peak memory."""
    rates = [r["images_per_s"] for r in rows]
    median = statistics.median(rates)
    return {**rows[0], "images_per_s": median, "images_per_s_rounds": rates,
            "images_per_s_min": min(r["images_per_s_min"] for r in rows),
            "images_per_s_max": max(r["images_per_s_max"] for r in rows),
            "wall_images_per_s": statistics.median(r["wall_images_per_s"] for r in rows),
            "step_ms": 1000 * rows[0]["batch_size"] / median,
            "timed_images": sum(r["timed_images"] for r in rows),
            "peak_mem_mb": max(r["peak_mem_mb"] for r in rows)}


def summarise(rows: list[dict]) -> list[dict]:
    """One line per (arch, binarizer): throughputs, peaks and the headline ratios."""
    by = {(r["arch"], r["binarizer"], r["kind"]): r for r in rows}
    out = []
    for r in rows:
        if r["kind"] == "fp32" or any(o["arch"] == r["arch"] and o["binarizer"] == r["binarizer"]
                                      for o in out):
            continue
        arch, b = r["arch"], r["binarizer"]
        get = lambda kind, key, name=b: by.get((arch, name, kind), {}).get(key)  # noqa: E731
        eng, fp, off = (get("engine", "images_per_s"), get("fp32", "images_per_s", "fp32"),
                        get("official", "images_per_s"))
        out.append({"arch": arch, "binarizer": b, "batch_size": r["batch_size"],
                    "engine_img_s": eng, "fp32_img_s": fp, "official_img_s": off,
                    "engine_over_official": eng / off if eng and off else None,
                    "engine_over_fp32": eng / fp if eng and fp else None,
                    "engine_peak_mb": get("engine", "peak_mem_mb"),
                    "fp32_peak_mb": get("fp32", "peak_mem_mb", "fp32"),
                    "official_peak_mb": get("official", "peak_mem_mb")})
    return out


def _timer(env: dict) -> str:
    return ("CUDA events (wall clock beside them in the JSON)" if env["device"].startswith("cuda")
            else "the wall clock")


def markdown(result: dict) -> str:
    env, s = result["env"], result["settings"]
    fmt = lambda v, p=1: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
    mem = "peak MiB (CUDA allocated)" if env["device"].startswith("cuda") else "peak RSS MiB"
    lines = [f"Device: {env['device_name']} ({env['device']}, {env['cpu_count']} CPUs, "
             f"{env['threads']} torch threads); torch {env['torch']}; bnnbench {env['bnnbench']}; "
             f"{env['created'][:19]}Z; load average at start {fmt((env['loadavg_start'] or [None])[0], 2)}.",
             f"Steps: {s['warmup']} warm-up (discarded), then the median of {s['repeats']} "
             f"blocks of {s['steps']} steps timed by {_timer(env)}, per process; median over "
             f"{s['rounds']} round(s) of fresh processes; compile "
             f"{'on' if s['compile'] else 'off'} (engine); official loop DataLoader workers "
             f"{s['workers']}.", "",
             f"| arch | binarizer | batch | engine img/s | fp32 engine img/s | official-style "
             f"img/s | engine / official | engine / fp32 | {mem} engine / fp32 / official |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["summary"]:
        lines.append(f"| {r['arch']} | {r['binarizer']} | {r['batch_size']} | "
                     f"{fmt(r['engine_img_s'])} | {fmt(r['fp32_img_s'])} | "
                     f"{fmt(r['official_img_s'])} | {fmt(r['engine_over_official'], 2)}× | "
                     f"{fmt(r['engine_over_fp32'], 2)}× | {fmt(r['engine_peak_mb'], 0)} / "
                     f"{fmt(r['fp32_peak_mb'], 0)} / {fmt(r['official_peak_mb'], 0)} |")
    for row in (r for r in result["rows"] if r.get("profile")):
        lines += ["", f"Profile, {row['arch']} / {row['binarizer']} / {row['kind']} "
                      f"(top operators by self time, torch.profiler, 2 steps):", "",
                  "| operator | ms per step | share |", "|---|---:|---:|"]
        lines += [f"| `{p['op']}` | {p['ms_per_step']:.1f} | {100 * p['share']:.1f} % |"
                  for p in row["profile"]]
    return "\n".join(lines) + "\n"


def write(result: dict, out_dir: Path | str) -> tuple[Path, Path]:
    """result → <out_dir>/bench-<device>.json and .md (the latest run per device kind)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "bench-" + result["env"]["device"].split(":")[0]
    jpath, mpath = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    jpath.write_text(json.dumps(result, indent=2) + "\n")
    mpath.write_text(markdown(result))
    return jpath, mpath
