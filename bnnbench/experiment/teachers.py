"""Teachers: the cells that distilling cells learn from, resolved, expanded and run first.

A stage whose recipe sets `distill` (a loss of bnnbench.distill) names its teacher in the
recipe key `teacher`: a table of cell fields (arch, binarizer, seed, recipe, stage_recipes,
epochs, total_epochs, budget, subset). The teacher trains on the student's dataset; what the
table leaves out is the full-precision `fp` entry of the student's arch, seed 0, the student's
epochs, total_epochs, budget and subset (so a shortened grid shortens its teachers) and its
own recipe (not the student's overrides). A teacher is a cell like any other: its id enters the student's resolved recipe,
so the student's id changes with the teacher's, and it lives in the same run store. One
teacher cell serves every student that names it; a teacher does not distil itself.
"""
from __future__ import annotations

import dataclasses

from ..api.distill import NONE
from ..errors import BnnbenchError
from .cell import CellConfig
from .recipe import stage_recipes

# the cell fields a teacher table may set, with their types
SPEC_KEYS = {"arch": str, "binarizer": (str, dict), "seed": int, "recipe": dict,
             "stage_recipes": dict, "epochs": int, "total_epochs": int, "budget": (float, int),
             "subset": int}
# what a teacher takes from its student unless its table sets it
INHERITED = ("epochs", "total_epochs", "budget", "subset", "data_dir", "device", "compile",
             "plugins")
_RESOLVED: dict[str, CellConfig] = {}    # teacher cells met by `resolve`, by id




def check_spec(spec, where: str) -> dict:
    """A teacher table with known keys of the right types, else a one-line BnnbenchError."""
    if not isinstance(spec, dict):
        raise BnnbenchError(f"{where}: recipe 'teacher' must be a table of cell fields "
                            f"({', '.join(SPEC_KEYS)}), got {spec!r}")
    for key, value in spec.items():
        if key not in SPEC_KEYS:
            raise BnnbenchError(f"{where}: recipe 'teacher' has no key '{key}' "
                                f"(its keys: {', '.join(SPEC_KEYS)})")
        unset = value is None and key in ("epochs", "total_epochs", "subset")   # not set
        if not unset and (not isinstance(value, SPEC_KEYS[key]) or isinstance(value, bool)):
            raise BnnbenchError(f"{where}: recipe 'teacher.{key}' has the wrong type: "
                                f"{value!r}")
    return dict(spec)


def teacher_cell(student: CellConfig, spec: dict) -> CellConfig:
    """The teacher cell a student's teacher table names (see the module docstring)."""
    fields = {"arch": student.arch, "binarizer": "fp", "seed": 0,
              **{key: getattr(student, key) for key in INHERITED}, **spec}
    return CellConfig(dataset=student.dataset, **fields).resolved()


def resolve(student: CellConfig, stage: str, recipe: dict, *, as_teacher: bool) -> str | None:
    """The teacher cell id of one stage's merged recipe, None when it does not distil (called
    by recipe.stage_recipes; `as_teacher`: the cell is itself a teacher)."""
    if recipe["distill"] == NONE:
        return None
    if as_teacher:
        raise BnnbenchError(f"the teacher distils in its stage '{stage}' itself; a teacher "
                            "trains without a teacher: set distill = \"none\" in the teacher "
                            "table's recipe")
    teacher = teacher_cell(student, recipe["teacher"])
    try:
        teacher.check_fields()
        first = stage_recipes(teacher, as_teacher=True)[0][1]
    except BnnbenchError as exc:
        raise BnnbenchError(f"stage '{stage}': teacher: {exc}") from None
    if first["normalize"] != recipe["normalize"]:
        raise BnnbenchError(f"stage '{stage}': the teacher normalises inputs with "
                            f"{first['normalize']!r}, the student with {recipe['normalize']!r}; "
                            "set the same recipe 'normalize' in both")
    teacher_id = teacher.cell_id()
    _RESOLVED[teacher_id] = teacher
    return teacher_id


def teacher_ids(cell: CellConfig) -> list[str]:
    """The ids of the cell's teachers, in stage order, each once."""
    return list(dict.fromkeys(r["teacher"] for _, r in stage_recipes(cell.resolved())
                              if r.get("teacher")))


def teacher_cells(cell: CellConfig) -> list[CellConfig]:
    return [dataclasses.replace(_RESOLVED[tid]) for tid in teacher_ids(cell)]


def label(cell: CellConfig) -> str:
    """The teacher column of `run --dry-run`: the teacher cell ids."""
    return ", ".join(teacher_ids(cell))


def add_teachers(cells: list[CellConfig]) -> list[CellConfig]:
    """`cells` with the teachers they need and do not list, those first."""
    ids = {c.cell_id() for c in cells}
    extra = []
    for cell in cells:
        for teacher in teacher_cells(cell):
            if teacher.cell_id() not in ids:
                ids.add(teacher.cell_id())
                extra.append(teacher)
    return extra + cells







