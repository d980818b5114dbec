"""What training reads from the binarizers of a model's binary layers: the parameters they hold
(recorded in config.json), their per-epoch metrics (metrics.jsonl) and whether p advances per
step. Kept out of train.py, which drives the loop."""
from __future__ import annotations

import json
from typing import Any

import torch

from ..api import layers as bnn
from ..errors import BnnbenchError
from ..store import binarizer_metrics


def live_config(model: torch.nn.Module, stage: str) -> dict[str, Any]:
    """The binarizer parameters every binary layer holds now; they must all agree and be in
    `stage` (a plugin that changes them per layer would train something else than recorded)."""
    seen = {json.dumps({"stage": layer.binarizer.stage, **layer.binarizer.config()},
                       sort_keys=True) for layer in bnn.binary_layers(model)}
    if len(seen) > 1:
        raise BnnbenchError(f"the binary layers hold different binarizer parameters in stage "
                            f"'{stage}': {sorted(seen)}; a binarizer's parameters must be the "
                            "same in every layer")
    live = json.loads(seen.pop()) if seen else {"stage": stage}
    if live.pop("stage") != stage:
        raise BnnbenchError(f"the binary layers are not in stage '{stage}' while it trains")
    return live


@torch.no_grad()
def metrics(model: torch.nn.Module) -> dict[str, float]:
    """Each binarizer's `metrics(w)` (its schedules, BiPer's QE), averaged over the binary
    layers, as `binarizer/<key>`; a name that cannot be recorded so is one BnnbenchError (train
    calls this as a stage starts, so that such a name fails before the stage's first epoch)."""
    sums: dict[str, list[float]] = {}
    for layer in bnn.binary_layers(model):
        for key, value in layer.binarizer.metrics(layer.weight.detach()).items():
            if not binarizer_metrics.is_valid_key(key):
                raise BnnbenchError(f"binarizer '{layer.binarizer.name}': metrics() returns "
                                    f"{key!r}, not a valid metric name (letters, digits and _, "
                                    "not starting with a digit); rename it")
            sums.setdefault(binarizer_metrics.PREFIX + key, []).append(float(value))
    return {key: sum(values) / len(values) for key, values in sums.items()}


def progress_per_step(model: torch.nn.Module) -> bool:
    """Whether a binarizer of `model` asks for p to advance every optimiser step."""
    return any(layer.binarizer.progress_per_step for layer in bnn.binary_layers(model))


def with_metrics(row: dict, model: torch.nn.Module) -> dict:
    """An epoch's metrics.jsonl row with the binarizers' metrics added."""
    return {**row, **metrics(model)}
