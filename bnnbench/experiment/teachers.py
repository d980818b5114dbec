"""Teachers: the cells that distilling cells learn from, named by a table in their recipe.

A stage whose recipe sets `distill` (a loss of bnnbench.distill) names its teacher in the
recipe key `teacher`: a table of cell fields (arch, binarizer, seed, recipe, stage_recipes,
epochs, total_epochs, budget, subset). The teacher trains on the student's dataset; what the
table leaves out is the full-precision `fp` entry of the student's arch, seed 0, the student's
epochs, total_epochs, budget and subset (so a shortened grid shortens its teachers) and its
own recipe (not the student's overrides). A teacher is a cell like any other: its id enters the
student's resolved recipe, so the student's id changes with the teacher's, and it lives in the
same run store. One teacher cell serves every student that names it; a teacher does not distil
itself. Which field follows which rule is cell.FIELDS; experiment.resolve applies them.
"""
from __future__ import annotations

from ..errors import BnnbenchError
from .cell import FIELDS, CellConfig

# the cell fields a teacher table may set, with their types
SPEC_KEYS = {name: f.table for name, f in FIELDS.items() if f.table is not None}
# what a teacher takes from its student unless its table sets it
INHERITED = tuple(name for name, f in FIELDS.items() if f.teacher == "student")
# a teacher's own values of the fields it does not inherit (the others: CellConfig's defaults)
DEFAULTS = {"binarizer": "fp", "seed": 0}


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


def teacher_config(student: CellConfig, spec: dict) -> CellConfig:
    """The teacher cell a student's teacher table names (see the module docstring)."""
    fields = {**{key: getattr(student, key) for key in INHERITED}, **DEFAULTS, **spec}
    return CellConfig(**fields).resolved()
