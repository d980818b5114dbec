"""A student's teachers in the run store: found finished, named by folder, or trained first
(the teacher cells themselves: bnnbench.experiment.teachers)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import BnnbenchError
from ..experiment.resolve import ResolvedCell
from ..experiment.teachers import SPEC_KEYS
from ..store import runstore
from ..store.reader import CellRecord


class TeacherNotReady(runstore.CellBusy):
    """A student's teacher has no finished record yet: the student cannot start now and
    writes nothing (as a busy cell), so it starts once its teacher has finished."""


def require_finished(cell: ResolvedCell, out_dir: Path,
                     given: dict[str, Path] | None = None) -> dict[str, Path]:
    """{teacher id: its finished run folder} of `cell`: `given[id]` or the folder beside
    `out_dir`. TeacherNotReady when a teacher has not finished; a BnnbenchError when the
    folder holds another cell."""
    folders = {}
    for tid in cell.teacher_ids:
        folder = Path((given or {}).get(tid) or Path(out_dir).parent / tid)
        record = CellRecord(folder)
        status = record.progress
        if status != "finished":
            raise TeacherNotReady(
                f"{cell.id} distils from teacher {tid}, whose record in {folder} is "
                f"{status}, not finished: train the teacher first (`bnnbench run` trains a "
                "grid's teachers first, `bnnbench train` when no --teacher is given)")
        config = record.config
        if config.get("cell_id") != tid or record.stale_reason:
            raise BnnbenchError(f"{folder} holds cell {config.get('cell_id')}, not the teacher "
                                f"{tid} that {cell.id} needs (another cell, or trained "
                                "with a recipe or code that has changed since): train the "
                                "teacher again or give its folder")
        folders[tid] = folder
    return folders


def spec_from_folder(folder: Path, dataset: str) -> dict:
    """The teacher table that names the cell trained in run folder `folder`."""
    path = Path(folder) / runstore.CONFIG
    if not path.exists():
        raise BnnbenchError(f"--teacher {folder} is not a run folder (no {runstore.CONFIG})")
    cell = CellRecord(folder).config.get("cell", {})
    if cell.get("dataset") != dataset:
        raise BnnbenchError(f"--teacher {folder} was trained on {cell.get('dataset')}, the "
                            f"student trains on {dataset}: give a teacher of the same dataset")
    return {key: cell[key] for key in SPEC_KEYS if key in cell}


def train_missing(cell: ResolvedCell, out_dir: Path, given: dict[str, Path],
                  train: Callable[[ResolvedCell, Path], dict],
                  echo: Callable[[str], None]) -> None:
    """Train the teachers of `cell` that no folder of `given` holds and that have not
    finished beside `out_dir` (`bnnbench train`: a student's teacher trains first)."""
    for teacher in cell.teachers:
        tid = teacher.id
        folder = Path(out_dir).parent / tid
        if tid not in given and CellRecord(folder).progress != "finished":
            echo(f"training teacher {tid} first -> {folder}")
            train(teacher, folder)
