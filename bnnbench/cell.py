"""One grid cell: (dataset, arch, binarizer, seed, recipe overrides) as plain, hashable data.

The cell config is what a run folder's config.json records, what a grid expands into and
what a cell id is a hash of, so that rerunning a grid finds its finished cells again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from . import registry


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
        """A copy whose binarizer is the full {"name", **params} dict (defaults filled in)."""
        registry.load_plugins(self.plugins)
        cls, params = registry.resolve(self.binarizer)
        return dataclasses.replace(self, binarizer={"name": cls.name, **params})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CellConfig":
        return cls(**d)

    def cell_id(self) -> str:
        """Stable id: readable prefix + hash of what changes the result (not paths, device)."""
        c = self.resolved()
        keyed = {k: v for k, v in c.to_dict().items()
                 if k not in ("data_dir", "device", "plugins", "compile")}
        digest = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
        return f"{c.dataset}-{c.arch}-{c.binarizer['name']}-s{c.seed}-{digest}"
