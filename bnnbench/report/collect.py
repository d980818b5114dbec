"""Run stores → one row per cell folder (pandas): what the report and the figures are built on.

`collect_cells` reads each cell folder through its store.reader record (each file parsed
once) and names the cells a grid expects but no folder holds; `collect_metrics` gives the
per-epoch rows of the current cells for the figures, from the same records. Stale and damaged
folders are kept as rows with their status, so the report can name them, but enter no number.
"""
from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..errors import BnnbenchError
from ..experiment.cell import OVERRIDES
from ..experiment.resolve import ResolvedCell
from ..store import binarizer_metrics
from ..store.reader import CellRecord, RunStore

CELL_COLUMNS = [
    "dataset", "arch", "variant", "family", "binarizer", "setting", "seed", "status", "top1",
    "top5", "best_top1", "best_top5", "epochs", "planned_epochs", "seconds", "device", "hardware",
    "final_stage_params", "params", "cell_id", "path", "error", "binarizer_params",
    "start_on_test", "steps", "stage_epochs", "teacher", "distill",
]  # then one column per binarizer quantity, binarizer/<key> (store.binarizer_metrics), sorted
LEFT_OUT = ("stale", "damaged")   # folders in no row: named under the table instead


# --- reading the run stores ----------------------------------------------------------------
def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), sub))
        return out
    return {prefix: value}


def _binarizer_dict(spec: Any) -> dict:
    if isinstance(spec, str):
        return {"name": spec}
    return dict(spec or {})


def _cell_row(cell: dict, *, path: str, cell_id: str | None, status: str) -> dict:
    """The fields of one cell that come from its config (shared by run and expected cells)."""
    bz = _binarizer_dict(cell.get("binarizer"))
    name = bz.pop("name", "?")
    knobs = {k: cell.get(k) for k in OVERRIDES}   # seed is the replicate axis
    return {"dataset": cell.get("dataset"), "arch": cell.get("arch"), "binarizer": name,
            "seed": cell.get("seed"), "status": status, "cell_id": cell_id, "path": path,
            "final_stage_params": {},  # a damaged folder's: none known
            "binarizer_params": bz, "_knobs": _flatten("", {k: v for k, v in knobs.items()
                                                     if v not in (None, {}, [])})}


def _read_cell(record: CellRecord) -> dict:
    """One row from a cell folder's record."""
    problem = record.damage
    if problem:
        return _damaged_row(record, problem)
    config = record.config
    cell = config.get("cell", {})
    result = record.result
    status = record.status
    row = _cell_row(cell, path=str(record.path),
                    cell_id=config.get("cell_id") or record.path.name, status=status)
    model = config.get("model") or {}
    stages = config.get("stages") or []
    planned = [s.get("recipe", {}).get("epochs") for s in stages]
    last_stage_bz = (stages[-1].get("recipe", {}).get("binarizer") or {}) if stages else {}
    eff = {**row["binarizer_params"], **last_stage_bz}  # what the final stage really trained with
    finished = status == "finished"
    row.update({
        "variant": model.get("variant"), "family": model.get("family"),
        "top1": result.get("top1") if finished else None,
        "top5": result.get("top5") if finished else None,
        "best_top1": result.get("best_top1") if finished else None,
        "best_top5": result.get("best_top5") if finished else None,
        "epochs": result.get("epochs"),
        "planned_epochs": sum(planned) if planned and None not in planned else None,
        "seconds": result.get("seconds"), "device": result.get("device"),
        "hardware": (config.get("env") or {}).get("device"),
        **(binarizer_metrics.of(result) if finished else {}),
        "final_stage_params": eff,
        "start_on_test": any(s.get("recipe", {}).get("init_from") == "best" for s in stages[1:]),
        **_distillation([s.get("recipe", {}) for s in stages]),
        "steps": result.get("steps"),
        "stage_epochs": "+".join(map(str, planned)) if planned and None not in planned else "",
        "params": result.get("params") or model.get("params"),
        "error": result.get("error"),
    })
    return row


def _damaged_row(record: CellRecord, problem: str) -> dict:
    """A folder whose records cannot be read: named, in no number, listed under the table."""
    try:
        cell = record.config.get("cell", {})
    except (BnnbenchError, OSError):
        cell = {}
    row = _cell_row(cell, path=str(record.path), cell_id=record.path.name, status="damaged")
    row["error"] = problem
    return row


def _expected_row(cell: ResolvedCell) -> dict:
    row = _cell_row(cell.config.to_dict(), path="", cell_id=cell.id, status="missing")
    stages = cell.stages
    row["final_stage_params"] = stages[-1][1]["binarizer"]  # as it would train
    row["planned_epochs"] = cell.planned_epochs
    row["stage_epochs"] = "+".join(str(r["epochs"]) for _, r in stages)
    row.update(_distillation([r for _, r in stages]))
    return row


def _distillation(recipes: list[dict]) -> dict:
    """The teacher ids and distillation losses of a cell's resolved stage recipes ("" when it
    does not distil)."""
    kd = [r for r in recipes if r.get("teacher")]
    return {"teacher": ", ".join(dict.fromkeys(r["teacher"] for r in kd)),
            "distill": ", ".join(dict.fromkeys(r["distill"] for r in kd))}


def run_stores(stores: Iterable[str | Path | RunStore]) -> list[RunStore]:
    """`stores` as RunStores (those given as paths read anew), each checked to exist."""
    runs = [s if isinstance(s, RunStore) else RunStore(s) for s in stores]
    for store in runs:
        if not store.path.exists():
            raise BnnbenchError(f"run store '{store.path}' does not exist; pass the folder a "
                                "grid or `bnnbench train --out` wrote to")
    return runs


def collect_cells(stores: Iterable[str | Path | RunStore],
                  expected: Iterable[ResolvedCell] = ()) -> pd.DataFrame:
    """One row per cell folder (a folder holding config.json) below any of `stores` (paths, or
    the RunStores a caller reads them through), plus one row with status "missing" per cell of
    `expected` (e.g. a grid's cells) whose id no folder has. Columns: CELL_COLUMNS, then each
    binarizer/<key> of a finished cell's result.json."""
    rows, seen_paths = [], set()
    for store in run_stores(stores):
        for record in store:
            key = record.path.resolve()
            if key in seen_paths:
                continue
            seen_paths.add(key)
            try:
                rows.append(_read_cell(record))
            except OSError as exc:
                rows.append(_damaged_row(record, f"{record.path} cannot be read ({exc})"))
    ids = {r["cell_id"] for r in rows}
    for cell in expected:
        row = _expected_row(cell)
        if row["cell_id"] not in ids:
            ids.add(row["cell_id"])
            rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=CELL_COLUMNS)
    _fill_variants(df)
    df["setting"] = _settings(df)
    for col in CELL_COLUMNS:
        if col not in df:
            df[col] = None
    quantities = sorted(c for c in df if c.startswith(binarizer_metrics.PREFIX))
    numeric = ["seed", "top1", "top5", "best_top1", "best_top5", "epochs", "planned_epochs",
               "seconds", "params", "steps", *quantities]
    df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce")
    return df[CELL_COLUMNS + quantities].reset_index(drop=True)


def _fill_variants(df: pd.DataFrame) -> None:
    """Cells without a model record (expected ones) take the variant their arch has elsewhere,
    else the one the model builder reports."""
    if "variant" not in df:
        df["variant"] = None
    if "family" not in df:
        df["family"] = None
    known = df.dropna(subset=["variant"]).groupby(["dataset", "arch"])["variant"].first()
    for i in df.index[df["variant"].isna()]:
        key = (df.at[i, "dataset"], df.at[i, "arch"])
        if key in known.index:
            df.at[i, "variant"] = known[key]
        else:
            info = model_counts(df.at[i, "dataset"], df.at[i, "arch"], json.dumps(
                {"name": df.at[i, "binarizer"], **df.at[i, "binarizer_params"]}, sort_keys=True))
            df.at[i, "variant"] = info.get("variant")
    df["variant"] = df["variant"].fillna("")


def _fmt(value: Any) -> str:
    if value is None:  # the override is absent in this cell: the recipe's own value
        return "default"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def _settings(df: pd.DataFrame) -> pd.Series:
    """Per cell, "key=value; ..." of the binarizer parameters and overrides that take more
    than one value among the cells of the same binarizer (the swept ones)."""
    out = pd.Series("", index=df.index, dtype=object)
    for _, idx in df[~df["status"].isin(LEFT_OUT)].groupby("binarizer").groups.items():
        vals = [{**df.at[i, "binarizer_params"], **df.at[i, "_knobs"]} for i in idx]
        keys = sorted({k for v in vals for k in v})
        swept = [k for k in keys
                 if len({json.dumps(v.get(k), sort_keys=True) for v in vals}) > 1]
        for i, v in zip(idx, vals):
            out[i] = "; ".join(f"{k}={_fmt(v.get(k))}" for k in swept)
    return out


# --- model counts ------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def model_counts(dataset: str, arch: str, binarizer_json: str) -> dict:
    """bops/flops/ops/params/size_bits (+ variant) of (arch, binarizer config) on `dataset`,
    counted once on a meta-device model (no memory, no compute); {} when it cannot be built."""
    from ..data import dataset_shape, list_datasets

    if dataset not in list_datasets():
        return {}
    shape = dataset_shape(dataset)
    try:
        import torch

        from ..models import build_model, complexity
        with torch.device("meta"):
            model = build_model(arch, json.loads(binarizer_json), family=shape.family,
                                in_channels=shape.in_channels, num_classes=shape.num_classes,
                                input_size=shape.image_size)
        counts = dict(complexity(model))
        counts["variant"] = getattr(model, "variant", None)
        return counts
    except Exception as exc:  # noqa: BLE001 - a plugin arch/binarizer we cannot build: NaN
        warnings.warn(f"no op counts for {dataset}/{arch}/{binarizer_json}: {exc}", stacklevel=2)
        return {}



def collect_metrics(cells: pd.DataFrame, stores: Iterable[RunStore]) -> pd.DataFrame:
    """Every current cell's metrics.jsonl rows (stale ones left out), long format, with the
    cell's identifying columns (`cells`: collect_cells' rows of `stores`)."""
    records: dict[str, CellRecord] = {}
    for store in stores:
        for record in store:
            records.setdefault(str(record.path), record)
    frames = []
    ident = ["dataset", "arch", "variant", "binarizer", "setting", "seed", "status", "cell_id"]
    for _, cell in cells.iterrows():
        if not cell["path"] or cell["status"] in LEFT_OUT:
            continue
        record = records[cell["path"]]
        if record.metrics:
            frame = record.metrics_frame()
            for col in ident:
                frame[col] = cell[col]
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=ident + ["stage", "global_epoch", "top1"])
    return pd.concat(frames, ignore_index=True)

