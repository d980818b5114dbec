"""The one reader of a run store (store.runstore says what a cell folder holds), in the spirit
of Ray Tune's ResultGrid and Result: a RunStore lists a store's cell folders and keeps a
CellRecord of each, and a CellRecord parses each of its folder's files at most once and
decides, from them alone, the cell's status. Every command that looks at a run store reads it
here, so a folder is read once per command and its status is decided in one place.

A status is one of
  finished, failed   result.json says so (a result without a status is a failure)
  partial            metrics.jsonl or a checkpoint, no result.json: training resumes from it
  new                nothing trained yet (no folder, or config.json only)
  stale              trained with a resolved recipe or binarizer code that differs from today's
                     (`reason` "recipe" or "code"): never reused, left out of reports
  damaged            a record cannot be read (`reason` names the file and what is wrong)
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import BnnbenchError
from ..experiment.cell import CellConfig, same_code
from ..experiment.resolve import resolve
from . import binarizer_metrics, runstore


class CellRecord:
    """One cell folder as it was when each file was first asked for. Its dicts and rows are
    shared by every caller: read them, copy what you change. A caller that must see what was
    written since (the driver after a wave trained) asks `refresh()` for a new record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._files: dict[str, tuple[Any, str | None]] = {}   # name -> (value, damage)

    def refresh(self) -> "CellRecord":
        return CellRecord(self.path)

    # --- the files -----------------------------------------------------------------------
    def _file(self, name: str) -> tuple[Any, str | None]:
        """(parsed value or None when absent, None) or (None, what is wrong with it)."""
        if name not in self._files:
            self._files[name] = _parse(self.path / name)
        return self._files[name]

    def _value(self, name: str, empty: Any) -> Any:
        value, problem = self._file(name)
        if problem:
            raise BnnbenchError(problem)
        return empty if value is None else value

    @property
    def config(self) -> dict:
        """config.json ({} while there is none); a BnnbenchError naming it when damaged."""
        return self._value(runstore.CONFIG, {})

    @property
    def result(self) -> dict:
        """result.json ({} while there is none: a new or partial cell)."""
        return self._value(runstore.RESULT, {})

    @property
    def metrics(self) -> list[dict]:
        """metrics.jsonl's rows, one per finished epoch ([] while there is none)."""
        return self._value(runstore.METRICS, [])

    def metrics_frame(self):
        """`metrics` as a new pandas DataFrame (one row per epoch)."""
        import pandas as pd

        return pd.DataFrame(self.metrics)

    def checkpoint(self) -> tuple[dict | None, str | None]:
        """(state, note) of the latest readable checkpoint (runstore.load_latest_checkpoint),
        its metrics rows read as today's; loaded at each call, never kept: it holds the
        weights."""
        state, note = runstore.load_latest_checkpoint(self.path)
        if state is not None and "metrics" in state:
            state["metrics"] = [binarizer_metrics.from_legacy(row) for row in state["metrics"]]
        return state, note

    # --- what they say ---------------------------------------------------------------------
    @property
    def damage(self) -> str | None:
        """The first record that cannot be read, named, and why; None when config.json,
        result.json and metrics.jsonl all read back (or are absent)."""
        for name in (runstore.CONFIG, runstore.RESULT, runstore.METRICS):
            problem = self._file(name)[1]
            if problem:
                return problem
        return None

    @property
    def config_readable(self) -> bool:
        """Whether config.json reads back (then train_cell can verify the cell and rebuild its
        other records from its checkpoint)."""
        return self._file(runstore.CONFIG)[0] is not None

    @property
    def progress(self) -> str:
        """finished | failed | partial | new | damaged: how far training got, whatever code
        trained it (`status` without staleness)."""
        if self.damage:
            return "damaged"
        if self.result:
            return self.result.get("status", "failed")
        if (self.path / runstore.CHECKPOINT).exists() or (self.path / runstore.METRICS).exists():
            return "partial"
        return "new"

    @cached_property
    def stale_reason(self) -> str | None:
        """Why config.json (whatever the other records) describes another cell than today's
        code would train: "recipe" or "code" (see `stale_reason`); None when it does not, or
        cannot be read (that is the folder's damage)."""
        try:
            value, _ = self._file(runstore.CONFIG)
        except OSError:
            return None
        return None if value is None else stale_reason(value)

    @property
    def status(self) -> str:
        """finished | failed | partial | new | stale | damaged (the module docstring)."""
        progress = self.progress
        return "stale" if progress != "damaged" and self.stale_reason else progress

    @property
    def reason(self) -> str | None:
        """Why a damaged or stale cell is so: the damage, or "recipe" / "code"; else None."""
        status = self.status
        if status == "damaged":
            return self.damage
        return self.stale_reason if status == "stale" else None


def _parse(path: Path) -> tuple[Any, str | None]:
    """A record file parsed: (value, None), (None, None) when absent, (None, the damage). The
    records of an older bnnbench are read as today's (binarizer_metrics.from_legacy)."""
    if not path.exists():
        return None, None
    try:
        if path.name == runstore.METRICS:
            rows = runstore.read_metrics(path)
            return [binarizer_metrics.from_legacy(row) for row in rows], None
        value = runstore.read_json(path)
    except BnnbenchError as exc:
        return None, str(exc)
    if not isinstance(value, dict):
        return None, f"{path} is damaged (a JSON {type(value).__name__}, not an object)"
    if path.name == runstore.RESULT:
        value = binarizer_metrics.from_legacy(value)
    return value, None


def stale_reason(config: dict) -> str | None:
    """Why a run folder's config.json no longer describes what today's code would train, or
    None: "recipe" when today's code gives its cell another id (its resolved recipe changed),
    "code" when its binarizer's source file changed since it trained (cell.same_code). None too
    when the cell no longer resolves (e.g. its plugin file is gone): that fault is named where
    the cell is built."""
    try:
        cell = resolve(CellConfig.from_dict(config["cell"]))
        if cell.id != config.get("cell_id"):
            return "recipe"
        recorded = config.get("code", {}).get("sha256")
        if recorded and not same_code(cell.config.binarizer, recorded):
            return "code"
    except (BnnbenchError, KeyError, TypeError, OSError):
        return None
    return None


class RunStore:
    """The cell folders (each holding a config.json) below `path`, recursively, and one
    CellRecord per folder, kept: however many callers ask, each file is parsed once until
    `refresh` forgets what a caller has changed since."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._records: dict[Path, CellRecord] = {}
        self._folders: list[Path] | None = None

    def folders(self) -> list[Path]:
        """Every cell folder below the store, sorted ([] while the store does not exist)."""
        if self._folders is None:
            self._folders = (sorted(p.parent for p in self.path.rglob(runstore.CONFIG))
                             if self.path.is_dir() else [])
        return self._folders

    def __iter__(self) -> Iterator[CellRecord]:
        """The records of `folders()`."""
        return (self.at(folder) for folder in self.folders())

    def __getitem__(self, cell_id: str) -> CellRecord:
        """The record of the cell `cell_id`, at <store>/<cell_id> (new while it has none)."""
        return self.at(self.path / cell_id)

    def at(self, folder: Path) -> CellRecord:
        """The record of the cell folder `folder` (a folder of this store)."""
        if folder not in self._records:
            self._records[folder] = CellRecord(folder)
        return self._records[folder]

    def refresh(self, cell_ids: Iterable[str] | None = None) -> None:
        """Read the listing and the records of `cell_ids` (every record when None) again when
        next asked: they were written, renamed or removed since."""
        self._folders = None
        if cell_ids is None:
            self._records.clear()
        for cell_id in cell_ids or ():
            self._records.pop(self.path / cell_id, None)
