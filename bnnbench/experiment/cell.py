"""One grid cell: (dataset, arch, binarizer, seed, recipe overrides) as plain, hashable data.

The cell config holds only what the user set (a binarizer parameter left out is filled per
stage by the binarizer's official recipe, then its class default: recipe.stage_recipes). It is
what a run folder's config.json records and what a grid expands into. The cell id is a hash of
everything that trains: the fully resolved per-stage recipes, binarizer parameters included.
So a finished cell is found again on rerun, and a cell whose recipe changed (in bnnbench or in
a plugin) gets a new id instead of reusing results trained with the old values.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import registry
from ..errors import BnnbenchError
from .recipe import stage_recipes


@dataclass
class CellConfig:
    dataset: str                               # cifar10 | imagenet | digits
    arch: str                                  # see bnnbench.models.list_archs(family)
    binarizer: Any = "biper"                   # a name or {"name": ..., **params}
    seed: int = 0
    recipe: dict = field(default_factory=dict)         # overrides for every stage
    stage_recipes: dict = field(default_factory=dict)  # {stage: {key: value}} overrides
    epochs: int | None = None                  # override every stage's epochs
    total_epochs: int | None = None            # epochs of all stages together (split by ratio)
    budget: float = 1.0                        # fraction of each stage's epochs (at least 1)
    subset: int | None = None                  # train on the first N images only (quick runs)
    data_dir: str | None = None                # where the dataset lives (see bnnbench.data)
    compile: bool = False                      # torch.compile the model
    device: str | None = None                  # cuda | cpu | None = cuda when available
    plugins: list = field(default_factory=list)  # plugin files that define the binarizer

    def resolved(self) -> "CellConfig":
        """A copy whose binarizer is the {"name", **params} dict of the parameters the user set
        (checked; defaults are not filled in: they depend on the stage)."""
        registry.load_plugins(self.plugins)
        cls, params = registry.given_params(self.binarizer)
        return dataclasses.replace(self, binarizer={"name": cls.name, **params})

    def check(self) -> "CellConfig":
        """Every value checked (one line naming the first bad one), before anything is created:
        dataset, arch, binarizer and its parameters, seed, epochs, budget, subset, recipes and
        stages (recipe.stage_recipes). The grid file, the CLI and Python all come here."""
        self.check_fields()
        stage_recipes(self.resolved())
        return self

    def check_fields(self) -> None:
        """The part of `check` before the recipes: dataset/arch and the scalar knobs."""
        check_dataset_arch(self.dataset, self.arch)
        for key in SCALARS:
            check_scalar(key, getattr(self, key))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CellConfig":
        return cls(**d)

    def cell_id(self) -> str:
        """Stable id: readable prefix + hash of what trains (not paths, device, compile)."""
        c = self.resolved()
        keyed = {"dataset": c.dataset, "arch": c.arch, "binarizer": c.binarizer["name"],
                 "seed": c.seed, "subset": c.subset,
                 "stages": [[name, r] for name, r in stage_recipes(c)]}
        digest = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
        return f"{c.dataset}-{c.arch}-{c.binarizer['name']}-s{c.seed}-{digest}"


# the cell's scalar knobs: (type, smallest value, largest value or None, what it is)
SCALARS = {
    "seed": (int, None, None, "an integer"),
    "epochs": (int, 1, None, "a number of epochs >= 1"),
    "total_epochs": (int, 1, None, "a number of epochs >= 1"),
    "budget": (float, 0.0, 1.0, "a fraction in (0, 1]"),
    "subset": (int, 1, None, "a number of images >= 1"),
}


def check_scalar(key: str, value: Any) -> None:
    """A BnnbenchError naming `key` unless `value` is valid for it (None = not set, except
    budget)."""
    kind, low, high, what = SCALARS[key]
    if value is None and key not in ("seed", "budget"):
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int and not isinstance(value, int):
        number = False
    ok = number and math.isfinite(value) and (low is None or value >= low) and (
        high is None or value <= high) and not (key == "budget" and value <= 0)
    if not ok:
        raise BnnbenchError(f"{key} must be {what}, got {value!r}")


def check_dataset_arch(dataset: str, arch: str) -> None:
    """A BnnbenchError unless `dataset` is known and `arch` is a model of its family."""
    from ..data import dataset_shape
    from ..models import list_archs

    family = dataset_shape(dataset).family
    if arch not in list_archs(family):
        raise BnnbenchError(f"unknown {family} arch '{arch}' (dataset {dataset}); known: "
                            f"{', '.join(list_archs(family))}")


def code_identity(binarizer: Any) -> dict:
    """What identifies a binarizer's code: its name, the file that defines it (the plugin file
    or the built-in's module) with a SHA-256 of that file, and the bnnbench version."""
    from ..version import __version__

    cls, _ = registry.given_params(binarizer)
    path = inspect.getsourcefile(cls)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
    return {"binarizer": cls.name, "source": path, "sha256": digest, "bnnbench": __version__}


def stale_reason(config: dict) -> str | None:
    """Why a run folder's config.json no longer describes what today's code would train, or
    None: "recipe" when today's code gives its cell another id (its resolved recipe changed),
    "code" when its binarizer's source file changed since it trained. None too when the cell
    no longer resolves (e.g. its plugin file is gone): that fault is named where the cell is
    built."""
    try:
        cell = CellConfig.from_dict(config["cell"])
        if cell.cell_id() != config.get("cell_id"):
            return "recipe"
        recorded = config.get("code", {}).get("sha256")
        if recorded and recorded != code_identity(cell.resolved().binarizer)["sha256"]:
            return "code"
    except (BnnbenchError, KeyError, TypeError, OSError):
        return None
    return None


# keys of a cell config that may differ between a run folder and a rerun of it
RUN_ONLY = ("data_dir", "device", "compile", "plugins")


def comparable(cell: dict) -> dict:
    """A cell config without the keys that do not change what trains (RUN_ONLY)."""
    return {k: v for k, v in cell.items() if k not in RUN_ONLY}
