"""The run store: the only interface between training and reporting.

One folder per cell, `<store>/<cell-id>/`, holding
  config.json     the cell config as the user set it ("cell", see `cell.CellConfig`), its id,
                  each stage's resolved recipe with the binarizer values read from the layers
                  that trained ("stages"), code and library versions, device
  metrics.jsonl   one JSON object per finished epoch (keys: stage, epoch, global_epoch, lr,
                  train_loss, train_top1, test_loss, top1, top5, seconds, images_per_s,
                  steps (optimiser steps of the epoch), and the binarizer's `metrics()` as
                  binarizer/<key>, e.g. IR-Net's binarizer/t, BiPer's binarizer/qe
                  (binarizer_metrics); train_loss of a stage that distils is its
                  distillation loss)
  result.json     written once at the end: status "finished" or "failed" (+ error), final and
                  best top1/top5, params, epochs (of all stages), steps, seconds, the final
                  epoch's binarizer/<key>
  checkpoint.pt   the latest checkpoint (resume) and, at the end, the final weights
  checkpoint.prev.pt   the checkpoint before it, kept while a cell trains: a damaged latest
                  one costs one epoch, not the cell (removed when the cell finishes)
  error.log       a failed cell's traceback (config.json is then minimal if the cell failed
                  before training started: just "cell" and "cell_id")
Every write is atomic (temp file + rename), so a crash never leaves half a record. A folder is
read through store.reader (its RunStore and CellRecords, which decide a cell's status) and
its records are written through store.records.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from ..errors import BnnbenchError

CONFIG, METRICS, RESULT, CHECKPOINT = "config.json", "metrics.jsonl", "result.json", "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"   # the checkpoint before the latest, while a cell trains
ERROR_LOG = "error.log"           # a failed cell's traceback, beside its result.json


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# files get the mode the user's umask gives (mkstemp's own is 0600), so collaborators on
# shared storage can read the run store
_FILE_MODE = 0o666 & ~_umask()


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, on disk (fsync) before it replaces
    `path`: a crash or a full disk leaves the previous file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        if exc.filename is None:   # a failed write names no file: name the one being written
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(json.dumps(obj, indent=2, sort_keys=True).encode()))


def write_text(path: Path, text: str) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(data))


def read_json(path: Path) -> Any:
    """The JSON at `path`; a BnnbenchError naming the file if it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except ValueError as exc:   # JSONDecodeError, UnicodeDecodeError
        raise BnnbenchError(f"{path} is damaged (not valid JSON: {exc})") from None


def read_metrics(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise BnnbenchError(f"{path}:{number} is damaged (not a JSON line: "
                                    f"{exc})") from None
    return rows


class CellBusy(BnnbenchError):
    """Another process is training this cell (see `cell_lock`)."""


@contextlib.contextmanager
def folder_lock(folder: Path, busy: BnnbenchError) -> Iterator[None]:
    """An exclusive lock on `folder` (its .lock file) for one process at a time, released by
    the OS even if that process is killed; raises `busy` while another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        except OSError:
            pass   # a file system without locks (some network mounts): go on unguarded
        yield


def cell_lock(cell_dir: Path):
    """Held while a process trains the cell, so a second one (a trial orphaned by a killed
    driver, the same command run twice) is refused instead of writing the same records."""
    return folder_lock(cell_dir, CellBusy(f"{cell_dir} is being trained by another process; "
                                          "wait for it to end or stop it, then rerun"))


def save_checkpoint(path: Path, state: dict) -> None:
    """Write `state` atomically; the checkpoint it replaces becomes checkpoint.prev.pt."""
    path = Path(path)

    def write(fh):
        torch.save(state, fh)
        if path.exists():   # a crash from here on leaves checkpoint.prev.pt to resume from
            os.replace(path, path.with_name(PREVIOUS))
    _atomic_write(path, write)


def load_checkpoint(path: Path) -> dict:
    """The checkpoint at `path`; a BnnbenchError naming the file if it cannot be read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - truncated, garbage, unreadable: all "damaged"
        raise BnnbenchError(f"{path} is damaged or unreadable ({type(exc).__name__}: "
                            f"{str(exc)[:120]})") from None


def load_latest_checkpoint(cell_dir: Path) -> tuple[dict | None, str | None]:
    """(state, note) from checkpoint.pt, or from checkpoint.prev.pt (one epoch earlier) when the
    latest is missing or damaged, with a note that says so; (None, None) when the cell has
    none. A BnnbenchError naming both files when neither can be read."""
    latest, previous = Path(cell_dir) / CHECKPOINT, Path(cell_dir) / PREVIOUS
    if not latest.exists() and not previous.exists():
        return None, None
    try:
        return load_checkpoint(latest), None
    except BnnbenchError as exc:
        problem = str(exc) if latest.exists() else f"{latest} is missing"
    if not previous.exists():
        raise BnnbenchError(f"{problem}; no earlier checkpoint to fall back on: delete it to "
                            "train this cell from its start")
    try:
        state = load_checkpoint(previous)
    except BnnbenchError as exc:
        raise BnnbenchError(f"{problem}, and so is {exc}: delete both to train this cell "
                            "from its start") from None
    return state, f"{problem}; resuming from {previous.name}, one epoch earlier"


def remove_partial_writes(cell_dir: Path) -> None:
    """Delete the temporary files of atomic writes that a kill interrupted (".<record>.xxxx");
    call it only while holding the cell's lock, when no write can be in flight."""
    records = (CONFIG, METRICS, RESULT, CHECKPOINT, PREVIOUS, ERROR_LOG)
    for path in Path(cell_dir).iterdir():
        if any(path.name.startswith(f".{name}.") for name in records) and path.is_file():
            path.unlink(missing_ok=True)


def drop_previous_checkpoint(cell_dir: Path) -> None:
    """Remove checkpoint.prev.pt once the cell has finished (its final weights are kept)."""
    Path(cell_dir, PREVIOUS).unlink(missing_ok=True)
