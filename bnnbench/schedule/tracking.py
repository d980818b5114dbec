"""`--log tensorboard|mlflow|wandb`: Ray Tune's own logger callbacks, fed by the per-epoch
reports of each cell (one run per cell, its scalars stepped by the cell's epoch).

TensorBoard writes under <store>/tensorboard/<grid>/<cell-id>/ (tensorboardX comes with
ray[tune]); MLflow and W&B need their packages (extras bnnbench[mlflow], bnnbench[wandb]).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import BnnbenchError

LOGGERS = ("tensorboard", "mlflow", "wandb")
PACKAGES = {"tensorboard": ("tensorboardX", "ray[tune]"), "mlflow": ("mlflow", "bnnbench[mlflow]"),
            "wandb": ("wandb", "bnnbench[wandb]")}
TENSORBOARD_DIR = "tensorboard"


def check(kinds) -> None:
    """One line naming the extra to install for a logger whose package is missing."""
    for kind in kinds:
        package, extra = PACKAGES[kind]
        if importlib.util.find_spec(package) is None:
            raise BnnbenchError(f"--log {kind} needs the {package} package: "
                                f"pip install '{extra}'")


def callbacks(kinds, experiment: str, store: Path) -> list:
    """Ray Tune logger callbacks for `kinds` (already `check`ed by the entry points)."""
    out = []
    if "tensorboard" in kinds:
        from ray.tune.logger import TBXLoggerCallback
        out.append(TBXLoggerCallback())
    if "mlflow" in kinds:
        from ray.air.integrations.mlflow import MLflowLoggerCallback
        out.append(MLflowLoggerCallback(
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or (store / "mlruns").as_uri(),
            experiment_name=experiment))
    if "wandb" in kinds:
        from ray.air.integrations.wandb import WandbLoggerCallback
        out.append(WandbLoggerCallback(project=experiment))
    return out
