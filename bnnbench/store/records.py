"""The one writer of each record of a run folder (store.runstore says what each holds):
config.json, result.json (a finished cell's or a failure), metrics.jsonl and the checkpoint's
dict. The engine and the tests build and write records only here, so each record's keys are
written once; store.reader reads them back."""
from __future__ import annotations

import copy
import datetime
import json
import platform
import subprocess
import traceback
from pathlib import Path
from typing import Any

import torch

from ..api import registry
from ..errors import BnnbenchError
from ..experiment.cell import code_identity
from ..experiment.resolve import ResolvedCell
from ..version import __version__
from . import binarizer_metrics, runstore
from .reader import CellRecord


# --- config.json -------------------------------------------------------------------------
def config_record(cell: ResolvedCell, *, model: dict, env: dict,
                  stages: list | None = None, created: str | None = None) -> dict:
    """config.json of a cell about to train: every input that decides its numbers. `model`:
    model_record's; `env`: environment's; `stages`: (stage, recipe) pairs, default the cell's
    (a copy, so recording the binarizer values a stage trained with leaves the cell as it is);
    `created`: an ISO time, default now."""
    cls = registry.get(cell.config.binarizer["name"])
    return {
        "cell": cell.config.to_dict(),
        "cell_id": cell.id,
        "code": code_identity(cell.config.binarizer),
        "stages": [{"name": name, "recipe": copy.deepcopy(r)}
                   for name, r in (cell.stages if stages is None else stages)],
        "model": model,
        "binarizer_meta": {"paper": cls.paper, "year": cls.year, "spec": cls.spec,
                           "stages": list(cls.stages), "origin": cls.origin},
        "env": env,
        "created": created or datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def model_record(model: torch.nn.Module, data, params: int) -> dict:
    """config.json's "model": what load_run rebuilds the model from."""
    return {"params": params, "variant": model.variant, "family": model.family,
            "in_channels": data.in_channels, "num_classes": data.num_classes,
            "input_size": data.image_size}


def environment(device: torch.device) -> dict:
    """The software versions and the device a cell trains with."""
    import torchvision   # here: it imports torch's compiler, which `bnnbench --help` must not

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


def write_config(folder: Path, config: dict) -> None:
    """config.json: config_record's dict, later with the live binarizer values of each stage."""
    runstore.write_json(Path(folder) / runstore.CONFIG, config)


# --- result.json -------------------------------------------------------------------------
def finished_result(*, top1: float, top5: float, best_top1: float, best_top5: float,
                    params: int, epochs: int, steps: int | None, seconds: float,
                    images_per_s: float, binarizer: dict[str, Any], device: str) -> dict:
    """result.json of a finished cell: its final and best epochs, size, cost and speed, and
    `binarizer`, the binarizer's own quantities of its final epoch (binarizer/<key>)."""
    return {"status": "finished", "top1": top1, "top5": top5, "best_top1": best_top1,
            "best_top5": best_top5, "params": params, "epochs": epochs, "steps": steps,
            "seconds": seconds, "images_per_s": images_per_s, **binarizer, "device": device}


def result_record(metrics: list[dict], params: int, device: torch.device) -> dict:
    """`finished_result` of a cell whose epochs are `metrics`."""
    last = metrics[-1]
    return finished_result(
        top1=last["top1"], top5=last["top5"], best_top1=max(r["top1"] for r in metrics),
        best_top5=max(r["top5"] for r in metrics), params=params, epochs=len(metrics),
        steps=total_steps(metrics), seconds=sum(r["seconds"] for r in metrics),
        images_per_s=sum(r["images_per_s"] for r in metrics) / len(metrics),
        binarizer=binarizer_metrics.of(last), device=str(device))


def total_steps(metrics: list[dict]) -> int | None:
    """Optimiser steps of all stages; None when an epoch of an older bnnbench did not count
    them (resumed across versions)."""
    steps = [row.get("steps") for row in metrics]
    return None if None in steps else sum(steps)


def write_result(folder: Path, result: dict) -> None:
    """result.json, written last: it is what makes a cell finished (or failed)."""
    runstore.write_json(Path(folder) / runstore.RESULT, result)


def write_failure(folder: Path, cell: dict, cell_id: str, exc: BaseException) -> None:
    """result.json "failed" with the error, its traceback in error.log, and a minimal
    config.json if the cell failed before writing its own, so reports still list it."""
    folder = Path(folder)
    if not (folder / runstore.CONFIG).exists():
        write_config(folder, {"cell": cell, "cell_id": cell_id})
    runstore.write_text(folder / runstore.ERROR_LOG, "".join(traceback.format_exception(exc)))
    try:
        epochs = len(CellRecord(folder).metrics)
    except BnnbenchError:
        epochs = None
    write_result(folder, {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                          "epochs": epochs})


# --- metrics.jsonl and the checkpoint ------------------------------------------------------
def write_metrics(folder: Path, rows: list[dict]) -> None:
    """Rewrite the whole metrics file (it is small) so it always matches the checkpoint."""
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    runstore.write_text(Path(folder) / runstore.METRICS, text)


def checkpoint_state(cell: ResolvedCell, *, binarizer: dict[str, Any], model: dict,
                     optimizer: dict, position: tuple[int, int], metrics: list[dict],
                     stage_start: dict | None, stage_start_top1: float | None) -> dict:
    """The checkpoint of a cell (state dicts of its model and optimizer): resumed only by the
    cell that wrote it. The cell and the binarizer values the weights trained with (BiPer's
    ω0) travel with them, so a checkpoint is never evaluated with another configuration."""
    return {"cell_id": cell.id, "cell": cell.config.to_dict(), "binarizer": binarizer,
            "model": model, "optimizer": optimizer, "position": list(position),
            "metrics": metrics, "stage_start": stage_start,
            "stage_start_top1": stage_start_top1}


def write_checkpoint(folder: Path, state: dict) -> None:
    """Save `state`; the checkpoint it replaces becomes checkpoint.prev.pt."""
    runstore.save_checkpoint(Path(folder) / runstore.CHECKPOINT, state)
