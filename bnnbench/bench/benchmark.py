"""Training-speed benchmark: bnnbench's engine against an official-style loop and full precision.

For one (arch, binarizer) three loops train the same network on CIFAR-10 and are timed alike:
  engine    bnnbench.engine.train.train_step over bnnbench.data's on-device batches (the code that
            train_cell runs: channels_last, bf16 autocast on CUDA, optional torch.compile);
  fp32      the same engine and backbone with the registry's `fp` entry in every binary conv
            (weight(w) = w, activation(x) = x): what the binarizer itself costs;
  official  the loop the official code bases wrote: torchvision CIFAR10 + per-image PIL
            transforms + DataLoader(workers, shuffle), fp32, no channels_last, no compile,
            loss.item() and top-1 read every step (their AverageMeters), and the binarizers'
            fused pieces composed from eager torch ops as the official codes write them
            (`bnnbench.api.surrogate.composed_autograd`: ReCU's and BiPer's torch.var
            normalisation, surrogate gradients op by op).
Method: `warmup` steps (compilation, allocator, worker start-up) are run and discarded, then
`steps` steps are timed as one block (one device synchronisation at each end, none in between
for the engine): by CUDA events on a GPU, with the wall clock beside them, and by the wall
clock on a CPU (bnnbench.bench.timing). Each measurement runs in its own Python process (unless
`isolate=False`) so that peak memory (CUDA: max_memory_allocated; CPU: the process's peak RSS,
DataLoader workers not included) and compile caches belong to that measurement alone.
The two loops are in bnnbench.bench.loops, the summary and Markdown in bnnbench.bench.table.
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

import torch

from ..api import registry
from ..errors import BnnbenchError
from ..models import list_archs
from ..version import __version__
from .loops import measure_engine, measure_official
from .table import markdown, summarise, write

__all__ = ["KINDS", "DEFAULT_ARCHS", "measure", "run_benchmark", "environment", "summarise",
           "markdown", "write"]
KINDS = ("engine", "fp32", "official")
DEFAULT_ARCHS = ("resnet20", "resnet18", "vgg_small")


def _binarizer_spec(kind: str, binarizer: str):
    """The fp32 kind runs the registry's `fp` entry: the very same BinaryConv2d, backbone and
    training step as a binarizer, so engine/fp32 isolates what binarisation costs."""
    return "fp" if kind == "fp32" else binarizer


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
    code = ("import json, sys; from bnnbench.bench.benchmark import measure; "
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
