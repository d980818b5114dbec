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
import json
from dataclasses import dataclass, field
from typing import Any

from . import registry
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


def is_stale(config: dict) -> bool:
    """Whether a run folder's config.json was written for a cell whose id today's code computes
    differently: its resolved recipe (official recipe, defaults, id rule) has changed since, so
    its numbers are not those of today's cell. False when the cell no longer resolves (e.g. its
    plugin file is gone): that fault is reported where the cell is built."""
    from .errors import BnnbenchError

    try:
        return CellConfig.from_dict(config["cell"]).cell_id() != config.get("cell_id")
    except (BnnbenchError, KeyError, TypeError):
        return False
