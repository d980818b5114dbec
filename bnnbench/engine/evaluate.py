"""A run folder as a trained model: `load_run` rebuilds it, `evaluate` measures it.

`load_run` needs nothing passed by hand: config.json records how the model was built (arch,
dataset shape, classes, input size) and the checkpoint carries its weights and the binarizer
values of the stage they trained in. Training and `bnnbench eval` evaluate with the same
`evaluate`, at the same batch size, so a reloaded run gives its recorded top-1 exactly on the
same device and thread count.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..api import layers as bnn
from ..api import registry
from ..data import dataset_shape
from ..errors import BnnbenchError
from ..experiment.cell import CellConfig
from ..models import build_model
from ..store import runstore
from ..store.reader import CellRecord
from .device import resolve_device


def eval_batch_size(recipe: dict[str, Any], device: torch.device) -> int:
    """The recipe's evaluation batch on a GPU; at most 256 on a CPU, where a larger one only
    spills the caches."""
    size = recipe["eval_batch_size"]
    return size if device.type == "cuda" else min(size, 256)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data, batch_size: int, forward=None) -> dict[str, float]:
    """Test loss, top-1 and top-5 (%) of `model` (in eval mode) on `data`'s test set; `forward`
    is the model or its compiled version. bf16 autocast on CUDA, as in training."""
    model.eval()
    forward = forward or model
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    loss_sum = torch.zeros((), device=device)
    top1 = torch.zeros((), device=device, dtype=torch.long)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in data.test_batches(batch_size):
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = forward(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        ranked = logits.topk(min(5, logits.shape[1]), dim=1).indices
        top1 += (ranked[:, 0] == y).sum()
        top5 += (ranked == y[:, None]).any(dim=1).sum()
        n += y.numel()
    return {"test_loss": loss_sum.item() / n, "top1": 100.0 * top1.item() / n,
            "top5": 100.0 * top5.item() / n}


def load_run(path: str | Path, *, device: str | None = "cpu") -> torch.nn.Module:
    """The model of the run folder `path` (its final checkpoint, or its latest one while it is
    unfinished) in eval mode, in the stage it last trained, with that stage's binarizer values,
    on `device` (None: CUDA where there is one). `model.run` holds the folder, its cell, stage,
    binarizer values and build_model's keywords."""
    return load_record(CellRecord(path), device=device)


def load_record(record: CellRecord, *, device: str | None = "cpu") -> torch.nn.Module:
    """`load_run` of the run folder a caller already reads through `record`."""
    path = record.path
    if not (path / runstore.CONFIG).exists():
        raise BnnbenchError(f"{path} is not a run folder (no {runstore.CONFIG}): give the "
                            "folder of one cell, e.g. results/runs/<grid>/<cell-id>")
    config = record.config
    cell = CellConfig.from_dict(config["cell"])
    registry.load_plugins(cell.plugins)
    ckpt, _ = record.checkpoint()
    if ckpt is None:
        raise BnnbenchError(f"{path} has no checkpoint yet: train it first")
    index = min(ckpt["position"][0], len(config["stages"]) - 1)
    stage = config["stages"][index]
    binarizer = ckpt.get("binarizer") or {"name": cell.resolved().binarizer["name"],
                                          **stage["recipe"]["binarizer"]}
    build = _build_args(config, cell.dataset)
    model = build_model(cell.arch, binarizer, **build)
    model.load_state_dict(ckpt["model"], strict=True)
    bnn.set_stage(model, stage["name"])
    model.run = {"path": str(path), "cell": config["cell"], "cell_id": config["cell_id"],
                 "stage": stage["name"], "binarizer": binarizer, "build": build}
    return model.to(resolve_device(device), memory_format=torch.channels_last).eval()


def _build_args(config: dict, dataset: str) -> dict[str, Any]:
    """build_model's keyword arguments as config.json recorded them (older records: the
    dataset's standard shape)."""
    model, shape = config.get("model", {}), dataset_shape(dataset)
    return {"family": model.get("family", shape.family),
            "in_channels": model.get("in_channels", shape.in_channels),
            "num_classes": model.get("num_classes", shape.num_classes),
            "input_size": model.get("input_size", shape.image_size)}


def evaluate_run(path: str | Path, *, data_dir: str | None = None,
                 device: str | None = "cpu") -> dict[str, float]:
    """`evaluate` of `load_run(path)` on its dataset's test set, normalised and batched as in
    its training (`data_dir`: where the dataset lives now, default the recorded one)."""
    from ..data import load_dataset

    record = CellRecord(path)
    model = load_record(record, device=device)
    stages = record.config["stages"]
    cell = CellConfig.from_dict(model.run["cell"])
    target = next(model.parameters()).device
    data = load_dataset(cell.dataset, data_dir=data_dir or cell.data_dir, device=target,
                        normalize=stages[0]["recipe"]["normalize"], subset=cell.subset)
    return evaluate(model, data, eval_batch_size(stages[-1]["recipe"], target))
