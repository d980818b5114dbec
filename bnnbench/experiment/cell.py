"""One grid cell: (dataset, arch, binarizer, seed, recipe overrides) as plain, hashable data.

The cell config holds only what the user set (a binarizer parameter left out is filled per
stage by the binarizer's official recipe, then its class default: recipe.stage_recipes). It is
what a run folder's config.json records and what a grid expands into; experiment.resolve turns
it into a ResolvedCell, whose id is a hash of everything that trains. `FIELDS` says, once, what
each field is to a run: whether it changes what trains, and what a teacher cell takes from it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..api import registry
from ..errors import BnnbenchError


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

    def check_fields(self) -> None:
        """Dataset/arch and the scalar knobs, each checked (one line naming the first bad one);
        resolve.resolve checks the binarizer, recipes and stages."""
        check_dataset_arch(self.dataset, self.arch)
        for key in SCALARS:
            check_scalar(key, getattr(self, key))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CellConfig":
        return cls(**d)


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


def same_code(binarizer: Any, digest: str) -> bool:
    """Whether a cell recorded with the file digest `digest` trained today's code of its
    binarizer: the file is unchanged, or the class names that version as `compatible_code`."""
    cls, _ = registry.given_params(binarizer)
    return digest == code_identity(binarizer)["sha256"] or digest in cls.compatible_code


class Field(NamedTuple):
    """What one CellConfig field is to a run."""
    kind: str          # axis | recipe | data | run (see FIELDS)
    teacher: str       # student | own: what a teacher cell takes unless its table sets it
    table: Any         # the types a teacher table may give it; None: a table cannot set it


# Every CellConfig field, once. kind "axis": names the cell (a grid axis, a table's columns);
# "recipe": shapes each stage's resolved recipe; "data": which images it trains on; "run":
# where and how it runs, not what (a rerun may change it). All but "run" change what trains.
# teacher "student": a teacher cell takes its student's value; "own": the teacher's own
# (teachers.DEFAULTS, else the field's default); either way unless its teacher table sets it.
FIELDS = {
    "dataset": Field("axis", "student", None),   # a teacher trains on its student's data
    "arch": Field("axis", "student", str),
    "binarizer": Field("axis", "own", (str, dict)),
    "seed": Field("axis", "own", int),
    "recipe": Field("recipe", "own", dict),
    "stage_recipes": Field("recipe", "own", dict),
    "epochs": Field("recipe", "student", int),         # so a shortened grid shortens its
    "total_epochs": Field("recipe", "student", int),   # teachers too
    "budget": Field("recipe", "student", (float, int)),
    "subset": Field("data", "student", int),
    "data_dir": Field("run", "student", None),
    "compile": Field("run", "student", None),
    "device": Field("run", "student", None),
    "plugins": Field("run", "student", None),
}
# what may differ between a run folder and a rerun of it
RUN_ONLY = tuple(name for name, f in FIELDS.items() if f.kind == "run")
# the user's overrides of what trains beyond the axes: what a grid may sweep besides them
OVERRIDES = tuple(name for name, f in FIELDS.items() if f.kind in ("recipe", "data"))


def comparable(cell: dict) -> dict:
    """A cell config without the keys that do not change what trains (RUN_ONLY)."""
    return {k: v for k, v in cell.items() if k not in RUN_ONLY}
