"""A cell resolved once: its id, its stages' recipes and its teachers, as one immutable value.

Everything that trains a cell or looks it up (the grid, the driver, the status table, the
engine) holds a ResolvedCell instead of re-resolving the CellConfig: resolving loads plugins,
merges every stage's recipe and resolves each teacher, which is the cell's own work once and
nobody else's. The id is a readable prefix and a hash of what trains (cell.FIELDS: the axes,
the data, and the fully resolved per-stage recipes, binarizer parameters and teacher ids
included), so a finished cell is found again on rerun, and a cell whose recipe changed (in
bnnbench or in a plugin) gets a new id instead of reusing results trained with the old values.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..errors import BnnbenchError
from .cell import FIELDS, CellConfig
from .recipe import stage_recipes
from .teachers import teacher_config

# hashed as they are; the "recipe" fields enter the id through the resolved stages
_HASHED = tuple(name for name, f in FIELDS.items() if f.kind in ("axis", "data"))


@dataclass(frozen=True)
class ResolvedCell:
    """A checked cell and all that resolving it gives (its recipe dicts are shared: read only)."""
    id: str
    config: CellConfig                      # its binarizer as {"name", **params the user set}
    given: CellConfig                       # as the caller wrote it (grid.describe shows it)
    stages: tuple[tuple[str, dict[str, Any]], ...]   # (stage, recipe) in training order
    teachers: tuple["ResolvedCell", ...]    # the cells it distils from, in stage order, once

    @property
    def teacher_ids(self) -> list[str]:
        return [teacher.id for teacher in self.teachers]

    @property
    def planned_epochs(self) -> int:
        """The epochs the cell trains over all its stages."""
        return sum(recipe["epochs"] for _, recipe in self.stages)


def resolve(cfg: CellConfig) -> ResolvedCell:
    """`cfg` checked (one line naming the first bad value: dataset, arch, the scalar knobs, the
    binarizer and its parameters, recipes, stages, teachers) and resolved. The grid file, the
    CLI and Python all come here."""
    return _resolve(cfg, as_teacher=False)


def _resolve(cfg: CellConfig, *, as_teacher: bool) -> ResolvedCell:
    given = cfg
    cfg.check_fields()
    cfg = cfg.resolved()
    stages = stage_recipes(cfg)
    teachers: dict[str, ResolvedCell] = {}   # by the json of their tables
    for stage, recipe in stages:
        if "teacher" in recipe:   # a distilling stage (recipe.stage_recipes)
            teacher = _stage_teacher(cfg, stage, recipe, teachers, as_teacher=as_teacher)
            recipe["teacher"] = teacher.id
    unique = {teacher.id: teacher for teacher in teachers.values()}
    return ResolvedCell(id=_cell_id(cfg, stages), config=cfg, given=given,
                        stages=tuple(stages), teachers=tuple(unique.values()))


def _stage_teacher(student: CellConfig, stage: str, recipe: dict,
                   known: dict[str, ResolvedCell], *, as_teacher: bool) -> ResolvedCell:
    """The teacher cell that one distilling stage's merged recipe names, checked (`known`: the
    ones the student's earlier stages named, so each is resolved once)."""
    if as_teacher:
        raise BnnbenchError(f"the teacher distils in its stage '{stage}' itself; a teacher "
                            "trains without a teacher: set distill = \"none\" in the teacher "
                            "table's recipe")
    key = json.dumps(recipe["teacher"], sort_keys=True)
    if key not in known:
        config = teacher_config(student, recipe["teacher"])
        try:
            known[key] = _resolve(config, as_teacher=True)
        except BnnbenchError as exc:
            raise BnnbenchError(f"stage '{stage}': teacher: {exc}") from None
    teacher = known[key]
    first = teacher.stages[0][1]
    if first["normalize"] != recipe["normalize"]:
        raise BnnbenchError(f"stage '{stage}': the teacher normalises inputs with "
                            f"{first['normalize']!r}, the student with {recipe['normalize']!r}; "
                            "set the same recipe 'normalize' in both")
    return teacher


def _cell_id(cfg: CellConfig, stages: list[tuple[str, dict[str, Any]]]) -> str:
    """Readable prefix + hash of what trains (not paths, device, compile)."""
    keyed = {name: getattr(cfg, name) for name in _HASHED}
    keyed["binarizer"] = cfg.binarizer["name"]     # its parameters are in the stages' recipes
    keyed["stages"] = [[name, recipe] for name, recipe in stages]
    digest = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
    return f"{cfg.dataset}-{cfg.arch}-{cfg.binarizer['name']}-s{cfg.seed}-{digest}"
