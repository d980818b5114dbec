"""Run stores → one pandas DataFrame → leaderboard.csv, leaderboard.md and figures.

The run store is the only interface between training and reporting (design.md), so a report
can be rebuilt from runs made anywhere. `collect_cells` reads one row per cell folder,
`leaderboard` aggregates the seeds of each cell into one row and puts the published number
beside it, `to_markdown` renders the paper-style table, `write_report` writes everything.

leaderboard.csv: one row per dataset × arch × variant × binarizer × setting, columns in the
order of LEADERBOARD_COLUMNS (stable; new columns are only ever appended):

  dataset, arch, variant, binarizer   what was trained (variant = the model's `variant` label)
  setting          the binarizer parameters and cell overrides (recipe, stage_recipes, epochs,
                   budget, subset) whose values differ between cells of the same binarizer,
                   e.g. "omega0=20"; empty when nothing was swept. Each value is its own row.
  n_seeds          finished cells (only these enter means, stds and bests)
  top1_mean, top1_std   final-epoch top-1 (%) over finished seeds; std is the sample std
                   (ddof=1, pandas' default), NaN with fewer than two seeds
  top1_best        the highest final-epoch top-1 among the seeds
  peak_top1_mean   mean over seeds of each run's best-epoch top-1 (what official codes print)
  top5_mean, top5_std   final-epoch top-5 (%)
  epochs           epochs per run (result.json; planned epochs of config.json when none finished)
  published_top1, published_top5, published_source   the matching row of the reference data
                   (bnnbench.published.match_published), NaN/empty when none was published
  delta_top1       top1_mean − published_top1 (percentage points)
  params           parameter count (result.json / config.json, else the complexity count)
  ops, bops, flops, size_bits   per image, from bnnbench.models.complexity (ops = bops/64 + flops;
                   size: 1 bit per binary weight, 32 per other parameter); NaN if not computable
  qe_mean, b_mean  mean over seeds of result.json's final qe (mean QE of the binary layers,
                   binarizers with an ω0 only) and b (mean |W|)
  gpu_hours        mean over finished seeds of the training time of one run (result.json
                   seconds / 3600) for runs on a CUDA device; NaN when none ran on a GPU
  cpu_hours        the same for runs on the CPU (kept apart: the two are not comparable)
  n_failed, n_partial, n_new, n_missing   cells by status: failed (result.json says so; never
                   in a mean), partial (metrics or checkpoint, no result), new (config.json only),
                   missing (expected by the caller's grid, no folder at all)
  seeds            the finished seeds, e.g. "0,1,2"
  hardware         the devices the finished runs used (config.json env.device)
  start_on_test    True when a finished run's later stage started from the previous stage's
                   epoch of best *test* top-1 (recipe init_from = "best", the official BiPer/ReCU
                   choice): a selection on the test set, marked † in leaderboard.md
  n_stale          run folders of this dataset × arch × binarizer trained with a resolved
                   recipe that differs from today's (their id is not the one today's code gives
                   their config), or with binarizer code whose source file has changed since
                   (cell.stale_reason). They are in no row's numbers; leaderboard.md names them
                   below the table; `run` trains a cell whose recipe changed under its new id,
                   and one whose code changed with --rerun-stale
Rows of a grid that has not run yet have n_seeds 0 and NaN results, never zeros.
"""
from __future__ import annotations

import functools
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from . import runstore
from .errors import BnnbenchError
from .cell import stale_reason
from .published import match_published
from .recipe import stage_recipes

LEADERBOARD_COLUMNS = [
    "dataset", "arch", "variant", "binarizer", "setting",
    "n_seeds", "top1_mean", "top1_std", "top1_best", "peak_top1_mean", "top5_mean", "top5_std",
    "epochs", "published_top1", "published_top5", "published_source", "delta_top1",
    "params", "ops", "bops", "flops", "size_bits", "qe_mean", "b_mean",
    "gpu_hours", "cpu_hours", "n_failed", "n_partial", "n_new", "n_missing", "seeds", "hardware",
    "n_stale", "start_on_test",
]
CELL_COLUMNS = [
    "dataset", "arch", "variant", "family", "binarizer", "setting", "seed", "status", "top1",
    "top5", "best_top1", "best_top5", "epochs", "planned_epochs", "seconds", "device", "hardware",
    "qe", "b", "omega0", "params", "cell_id", "path", "error", "binarizer_params",
    "start_on_test",
]
# Cell fields that are user overrides of a run (may be swept); seed is the replicate axis and
# data_dir/device/compile/plugins do not change the result.
_KNOBS = ("recipe", "stage_recipes", "epochs", "budget", "subset")
_STATUSES = ("failed", "partial", "new", "missing")
LEFT_OUT = ("stale", "damaged")   # folders in no row: named under the table instead
_INT_COLUMNS = ("epochs", "params", "bops", "flops", "size_bits")
# What a model needs to be built for counting, per dataset (in_channels, classes, image side).
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
    knobs = {k: cell.get(k) for k in _KNOBS}
    return {"dataset": cell.get("dataset"), "arch": cell.get("arch"), "binarizer": name,
            "seed": cell.get("seed"), "status": status, "cell_id": cell_id, "path": path,
            "binarizer_params": bz, "_knobs": _flatten("", {k: v for k, v in knobs.items()
                                                     if v not in (None, {}, [])})}


def _read_cell(cell_dir: Path) -> dict:
    """One row from a cell folder; each record is read once (metrics.jsonl only by
    runstore.damage)."""
    problem = runstore.damage(cell_dir)
    if problem:
        return _damaged_row(cell_dir, problem)
    config = runstore.read_json(cell_dir / runstore.CONFIG)
    cell = config.get("cell", {})
    result = runstore.read_result(cell_dir)
    status = "stale" if stale_reason(config) else runstore.status_of(cell_dir, result)
    row = _cell_row(cell, path=str(cell_dir), cell_id=config.get("cell_id") or cell_dir.name,
                    status=status)
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
        "qe": result.get("qe") if finished else None, "b": result.get("b") if finished else None,
        "omega0": eff.get("omega0"),
        "start_on_test": any(s.get("recipe", {}).get("init_from") == "best" for s in stages[1:]),
        "params": result.get("params") or model.get("params"),
        "error": result.get("error"),
    })
    return row


def _damaged_row(cell_dir: Path, problem: str) -> dict:
    """A folder whose records cannot be read: named, in no number, listed under the table."""
    try:
        cell = runstore.read_json(cell_dir / runstore.CONFIG).get("cell", {})
    except (BnnbenchError, OSError, AttributeError):
        cell = {}
    row = _cell_row(cell, path=str(cell_dir), cell_id=cell_dir.name, status="damaged")
    row["error"] = problem
    return row


def _expected_row(cfg: Any) -> dict:
    from .cell import CellConfig
    cfg = cfg if isinstance(cfg, CellConfig) else CellConfig.from_dict(dict(cfg))
    cfg = cfg.resolved()
    row = _cell_row(cfg.to_dict(), path="", cell_id=cfg.cell_id(), status="missing")
    row["omega0"] = stage_recipes(cfg)[-1][1]["binarizer"].get("omega0")  # as it would train
    return row


def collect_cells(stores: Iterable[str | Path], expected: Iterable[Any] = ()) -> pd.DataFrame:
    """One row per cell folder (a folder holding config.json) below any of `stores`, plus one
    row with status "missing" per cell of `expected` (CellConfigs or their dicts, e.g. a grid's
    expansion) whose id no folder has. Columns: CELL_COLUMNS."""
    rows, seen_paths = [], set()
    for store in stores:
        store = Path(store)
        if not store.exists():
            raise BnnbenchError(f"run store '{store}' does not exist; pass the folder a grid "
                                "or `bnnbench train --out` wrote to")
        for cell_dir in runstore.cell_dirs(store):
            key = cell_dir.resolve()
            if key in seen_paths:
                continue
            seen_paths.add(key)
            try:
                rows.append(_read_cell(cell_dir))
            except OSError as exc:
                rows.append(_damaged_row(cell_dir, f"{cell_dir} cannot be read ({exc})"))
    ids = {r["cell_id"] for r in rows}
    for cfg in expected:
        row = _expected_row(cfg)
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
    numeric = ["seed", "top1", "top5", "best_top1", "best_top5", "epochs", "planned_epochs",
               "seconds", "qe", "b", "omega0", "params"]
    df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce")
    return df[CELL_COLUMNS].reset_index(drop=True)


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
            info = _model_counts(df.at[i, "dataset"], df.at[i, "arch"], json.dumps(
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
def _model_counts(dataset: str, arch: str, binarizer_json: str) -> dict:
    """bops/flops/ops/params/size_bits (+ variant) of (arch, binarizer config) on `dataset`,
    counted once on a meta-device model (no memory, no compute); {} when it cannot be built."""
    from .data import SHAPES

    if dataset not in SHAPES:
        return {}
    shape = SHAPES[dataset]
    try:
        import torch

        from .models import build_model, complexity
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


# --- the leaderboard -----------------------------------------------------------------------
def _natural(text: str) -> tuple:
    """Sort "omega0=5" before "omega0=20"."""
    return tuple((0, float(t), "") if re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", t) else (1, 0.0, t)
                 for t in re.split(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)", text) if t)


def _mean(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.mean()) if len(s) else math.nan


def _published_bits(binarizer: str) -> str:
    """The W/A bits of the published numbers to compare with: 32/32 for a full-precision entry
    (`binary = False`, e.g. fp), else 1/1 (also for a binarizer whose plugin is not loaded)."""
    from . import registry
    try:
        return "1/1" if registry.get(binarizer).binary else "32/32"
    except BnnbenchError:
        return "1/1"


def _aggregate(group: pd.DataFrame, counts: bool) -> dict:
    fin = group[group["status"] == "finished"]
    first = group.iloc[0]
    pub = match_published(first["dataset"], first["arch"], first["binarizer"],
                          first["variant"] or None, bits=_published_bits(first["binarizer"]))
    cuda = fin["device"].fillna("").str.startswith("cuda")
    cpu = fin["device"].fillna("").str.startswith("cpu")
    epochs = fin["epochs"].max() if len(fin) else group["planned_epochs"].max()
    model = {}
    if counts:
        bz = {"name": first["binarizer"], **first["binarizer_params"]}
        model = _model_counts(first["dataset"], first["arch"], json.dumps(bz, sort_keys=True))
    params = group["params"].dropna()
    top1_mean = _mean(fin["top1"])
    published_top1 = float(pub["top1"]) if pub is not None else math.nan
    row = {
        "n_seeds": len(fin),
        "top1_mean": top1_mean,
        "top1_std": float(fin["top1"].std(ddof=1)) if len(fin) > 1 else math.nan,
        "top1_best": float(fin["top1"].max()) if len(fin) else math.nan,
        "peak_top1_mean": _mean(fin["best_top1"]),
        "top5_mean": _mean(fin["top5"]),
        "top5_std": float(fin["top5"].std(ddof=1)) if len(fin) > 1 else math.nan,
        "epochs": epochs,
        "published_top1": published_top1,
        "published_top5": float(pub["top5"]) if pub is not None else math.nan,
        "published_source": pub["source"] if pub is not None else "",
        "delta_top1": top1_mean - published_top1,
        "params": float(params.iloc[0]) if len(params) else model.get("params", math.nan),
        "ops": model.get("ops", math.nan), "bops": model.get("bops", math.nan),
        "flops": model.get("flops", math.nan), "size_bits": model.get("size_bits", math.nan),
        "qe_mean": _mean(fin["qe"]), "b_mean": _mean(fin["b"]),
        "gpu_hours": _mean(fin.loc[cuda, "seconds"]) / 3600,
        "cpu_hours": _mean(fin.loc[cpu, "seconds"]) / 3600,
        "seeds": ",".join(str(int(s)) for s in sorted(fin["seed"].dropna())),
        "hardware": " | ".join(sorted(set(fin["hardware"].dropna()))),
        "start_on_test": bool(fin["start_on_test"].fillna(False).astype(bool).any()),
    }
    for status in _STATUSES:
        row[f"n_{status}"] = int((group["status"] == status).sum())
    return row


def leaderboard(cells: pd.DataFrame, *, counts: bool = True) -> pd.DataFrame:
    """Aggregate `collect_cells`' rows into LEADERBOARD_COLUMNS, one row per
    dataset × arch × variant × binarizer × setting; `counts=False` skips the op counts."""
    if cells.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    keys = ["dataset", "arch", "variant", "binarizer", "setting"]
    stale = cells[cells["status"] == "stale"].groupby(["dataset", "arch", "binarizer"]).size()
    rows = []
    for key, group in cells[~cells["status"].isin(LEFT_OUT)].groupby(keys, sort=False,
                                                                     dropna=False):
        row = {**dict(zip(keys, key)), **_aggregate(group, counts)}
        row["n_stale"] = int(stale.get((row["dataset"], row["arch"], row["binarizer"]), 0))
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    board = pd.DataFrame(rows)
    board = board.sort_values(keys, key=lambda col: col.map(lambda v: _natural(str(v))))
    board = board[LEADERBOARD_COLUMNS].reset_index(drop=True)
    for col in ("n_seeds", "n_stale", *(f"n_{s}" for s in _STATUSES)):
        board[col] = board[col].astype(int)
    for col in _INT_COLUMNS:  # whole numbers, empty (not 0) where unknown
        board[col] = pd.to_numeric(board[col]).round().astype("Int64")
    return board


# --- markdown --------------------------------------------------------------------------------
def _num(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _row_label(r: pd.Series) -> str:
    label = f"{r['binarizer']} ({r['setting']})" if r["setting"] else r["binarizer"]
    return label + (" †" if r["start_on_test"] else "")


def _col_label(r: pd.Series, multi_variant: set) -> str:
    return f"{r['arch']} [{r['variant']}]" if r["arch"] in multi_variant else r["arch"]


def to_markdown(board: pd.DataFrame) -> str:
    """The paper-style table per dataset: rows binarizers, columns archs, cells
    "ours ± std (published)", the best mean of each column in bold."""
    lines = ["# bnnbench leaderboard", ""]
    if board.empty:
        return "\n".join(lines + ["No runs found.", ""])
    for dataset, sub in board.groupby("dataset", sort=False):
        variants = sub.groupby("arch")["variant"].nunique()
        multi = set(variants[variants > 1].index)
        sub = sub.assign(_row=sub.apply(_row_label, axis=1),
                         _col=sub.apply(_col_label, axis=1, multi_variant=multi))
        cols = list(dict.fromkeys(sub["_col"]))
        rows = sorted(dict.fromkeys(sub["_row"]), key=_natural)
        best = sub.groupby("_col")["top1_mean"].max()
        table = {(r["_row"], r["_col"]): r for _, r in sub.iterrows()}
        lines += [f"## {dataset}", "", "| binarizer | " + " | ".join(cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for row in rows:
            cells = []
            for col in cols:
                r = table.get((row, col))
                if r is None:
                    cells.append("")
                    continue
                ours = _num(r["top1_mean"])
                if r["n_seeds"] > 1:
                    ours += f" ± {_num(r['top1_std'])}"
                if r["n_seeds"] and r["top1_mean"] == best[col]:
                    ours = f"**{ours}**"
                cells.append(f"{ours} ({_num(r['published_top1'])})")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        n = sorted(set(sub.loc[sub["n_seeds"] > 0, "n_seeds"]))
        seeds = ("no finished runs yet" if not n else f"{n[0]} seed(s) per cell" if len(n) == 1
                 else f"{n[0]}–{n[-1]} seeds per cell (n_seeds in leaderboard.csv)")
        variant_note = ", ".join(f"{a}: {v}" for a, v in
                                 sub.groupby("arch")["variant"].first().items()
                                 if a not in multi and v)
        lines += ["", f"Final-epoch top-1 (%), mean ± sample std (ddof=1) over seeds; {seeds}; "
                  "in parentheses the published top-1 (sources in leaderboard.csv and "
                  "results/reference/); **bold**: best mean of the column; –: no result."
                  + (f" Backbones: {variant_note}." if variant_note else "")
                  + (" †: a later stage started from the previous stage's epoch of best test "
                     "top-1 (init_from = best, as the official BiPer/ReCU code), a choice made "
                     "on the test set." if sub["start_on_test"].any() else ""), ""]
    return "\n".join(lines)


# --- writing everything ------------------------------------------------------------------------
def write_report(stores: Iterable[str | Path], out: str | Path, *, expected: Iterable[Any] = (),
                 figures: bool = True, counts: bool = True) -> dict[str, Any]:
    """Read `stores`, write leaderboard.csv, leaderboard.md and figures/ (PNG + SVG) into `out`.
    Returns {"cells", "leaderboard", "markdown", "files"}."""
    stores = [Path(s) for s in stores]
    cells = collect_cells(stores, expected)
    if cells.empty:
        raise BnnbenchError(f"no cell folders (config.json) under {', '.join(map(str, stores))}; "
                            "run `bnnbench run` or `bnnbench train` first, or pass the right "
                            "folder")
    board = leaderboard(cells, counts=counts)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(board) + left_out_note(cells)
    board.to_csv(out / "leaderboard.csv", index=False)
    (out / "leaderboard.md").write_text(markdown)
    files = [out / "leaderboard.csv", out / "leaderboard.md"]
    if figures:
        from . import figures as fig
        metrics = collect_metrics(cells)
        files += fig.write_all(cells, board, metrics, out / "figures")
    return {"cells": cells, "leaderboard": board, "markdown": markdown, "files": files}


def left_out_note(cells: pd.DataFrame) -> str:
    """Paragraphs naming the run folders that no number above includes: stale ones and damaged
    ones, each damaged record with what is wrong ("" if none)."""
    out = ""
    stale = cells.loc[cells["status"] == "stale", "path"].tolist()
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        out += (f"\nLeft out: {len(stale)} stale run folder(s), trained with a resolved recipe "
                f"or binarizer code that differs from today's (n_stale in leaderboard.csv): "
                f"{shown}. `bnnbench run` of their grid trains them again (with --rerun-stale "
                "where only the code changed).\n")
    damaged = cells.loc[cells["status"] == "damaged", "error"].tolist()
    if damaged:
        out += (f"\nLeft out: {len(damaged)} run folder(s) with a damaged record (`bnnbench run` "
                "of their grid rewrites a damaged result.json or metrics.jsonl from the "
                "checkpoint; restore or delete a folder whose config.json is damaged):\n"
                + "".join(f"- {problem}\n" for problem in damaged))
    return out


def collect_metrics(cells: pd.DataFrame) -> pd.DataFrame:
    """Every current cell's metrics.jsonl rows (stale ones left out), long format, with the
    cell's identifying columns."""
    frames = []
    ident = ["dataset", "arch", "variant", "binarizer", "setting", "seed", "status", "cell_id",
             "omega0"]
    for _, cell in cells.iterrows():
        if not cell["path"] or cell["status"] in LEFT_OUT:
            continue
        rows = runstore.read_metrics(Path(cell["path"]) / runstore.METRICS)
        if rows:
            frame = pd.DataFrame(rows)
            for col in ident:
                frame[col] = cell[col]
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=ident + ["stage", "global_epoch", "top1"])
    return pd.concat(frames, ignore_index=True)


def records(board: pd.DataFrame) -> list[dict]:
    """The leaderboard as JSON-ready dicts (NaN → None)."""
    return [{k: (None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else
                 v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in board.to_dict(orient="records")]
