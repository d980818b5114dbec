"""The run store: the only interface between training and reporting.

One folder per cell, `<store>/<cell-id>/`, holding
  config.json     the cell config as the user set it ("cell", see `cell.CellConfig`), its id,
                  each stage's resolved recipe with the binarizer values read from the layers
                  that trained ("stages"), code and library versions, device
  metrics.jsonl   one JSON object per finished epoch (keys: stage, epoch, global_epoch, lr,
                  train_loss, train_top1, test_loss, top1, top5, seconds, images_per_s, qe, b)
  result.json     written once at the end: status "finished" or "failed" (+ error), final and
                  best top1/top5, params, epochs, seconds
  checkpoint.pt   the latest checkpoint (resume) and, at the end, the final weights
  error.log       a failed cell's traceback (config.json is then minimal if the cell failed
                  before training started: just "cell" and "cell_id")
Every write is atomic (temp file + rename), so a crash never leaves half a record.
"""
from __future__ import annotations

import json
import os
import tempfile
import traceback
from pathlib import Path
from typing import Any, Iterator

import torch

CONFIG, METRICS, RESULT, CHECKPOINT = "config.json", "metrics.jsonl", "result.json", "checkpoint.pt"
ERROR_LOG = "error.log"           # a failed cell's traceback, beside its result.json


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(json.dumps(obj, indent=2, sort_keys=True).encode()))


def write_text(path: Path, text: str) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def record_failure(cell_dir: Path, cell: dict, cell_id: str, exc: BaseException) -> None:
    """result.json "failed" with the error, the traceback in error.log (call it inside the
    `except` block), and a minimal config.json if the cell failed before writing its own, so
    reports still list it."""
    cell_dir = Path(cell_dir)
    if not (cell_dir / CONFIG).exists():
        write_json(cell_dir / CONFIG, {"cell": cell, "cell_id": cell_id})
    write_text(cell_dir / ERROR_LOG, traceback.format_exc())
    write_json(cell_dir / RESULT, {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                   "epochs": len(read_metrics(cell_dir / METRICS))})


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_metrics(path: Path, rows: list[dict]) -> None:
    """Rewrite the whole metrics file (it is small) so it always matches the checkpoint."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    _atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def read_metrics(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_checkpoint(path: Path, state: dict) -> None:
    _atomic_write(Path(path), lambda fh: torch.save(state, fh))


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def cell_dirs(store: Path) -> Iterator[Path]:
    """Every cell folder (one holding a config.json) below `store`, recursively, sorted."""
    return iter(sorted(p.parent for p in Path(store).rglob(CONFIG)))


def read_result(cell_dir: Path) -> dict:
    """result.json's dict, or {} while the cell has none (new or partial)."""
    path = Path(cell_dir) / RESULT
    return read_json(path) if path.exists() else {}


def status(cell_dir: Path) -> str:
    """'finished', 'failed', 'partial' (has metrics or a checkpoint) or 'new'."""
    cell_dir = Path(cell_dir)
    result = read_result(cell_dir)
    if result:
        return result.get("status", "failed")
    if (cell_dir / CHECKPOINT).exists() or (cell_dir / METRICS).exists():
        return "partial"
    return "new"
