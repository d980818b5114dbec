"""What a cell's run folder says about it: config.json's header (the cell, its code, model and
environment) and result.json's summary of its epochs. Kept apart from train.py, which drives
the loop and writes these dicts where and when they belong."""
from __future__ import annotations

import copy
import datetime
import platform
import subprocess
from pathlib import Path

import torch
import torchvision

from ..api import registry
from ..experiment.cell import code_identity
from ..experiment.resolve import ResolvedCell
from ..version import __version__
from . import binarizer_metrics


def config_record(cell: ResolvedCell, model: torch.nn.Module, data, params: int,
                  device: torch.device) -> dict:
    """config.json of a cell about to train: every input that decides its numbers."""
    cls = registry.get(cell.config.binarizer["name"])
    return {
        "cell": cell.config.to_dict(),
        "cell_id": cell.id,
        "code": code_identity(cell.config.binarizer),
        "stages": [{"name": name, "recipe": copy.deepcopy(r)} for name, r in cell.stages],
        "model": {"params": params, "variant": model.variant, "family": model.family,
                  "in_channels": data.in_channels, "num_classes": data.num_classes,
                  "input_size": data.image_size},
        "binarizer_meta": {"paper": cls.paper, "year": cls.year, "spec": cls.spec,
                           "stages": list(cls.stages), "origin": cls.origin},
        "env": environment(device),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def environment(device: torch.device) -> dict:
    """The software versions and the device a cell trains with."""
    return {"bnnbench": __version__, "git": git_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "python": platform.python_version(),
            "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                       else f"cpu ({platform.processor() or platform.machine()}, "
                            f"{torch.get_num_threads()} threads)")}


def git_version() -> str | None:
    """The checkout's commit, `-dirty` if edited (None when bnnbench is not a git checkout)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def result_record(metrics: list[dict], params: int, device: torch.device) -> dict:
    """result.json of a finished cell: its last and best epochs, size, cost and speed, and the
    binarizer's own quantities of its last epoch."""
    last = metrics[-1]
    return {
        "status": "finished", "top1": last["top1"], "top5": last["top5"],
        "best_top1": max(r["top1"] for r in metrics),
        "best_top5": max(r["top5"] for r in metrics),
        "params": params, "epochs": len(metrics), "steps": total_steps(metrics),
        "seconds": sum(r["seconds"] for r in metrics),
        "images_per_s": sum(r["images_per_s"] for r in metrics) / len(metrics),
        **binarizer_metrics.of(last), "device": str(device)}


def total_steps(metrics: list[dict]) -> int | None:
    """Optimiser steps of all stages; None when an epoch of an older bnnbench did not count
    them (resumed across versions)."""
    steps = [row.get("steps") for row in metrics]
    return None if None in steps else sum(steps)
