"""Run stores → one pandas DataFrame → leaderboard.csv/.md/.tex/.html, ranking.csv, figures.

The run store is the only interface between training and reporting (design.md), so a report
can be rebuilt from runs made anywhere. `collect_cells` (bnnbench.report.collect) reads one row
per cell folder, `leaderboard` aggregates the seeds of each cell into one row and puts the
published number beside it, bnnbench.report.stats decides the bests and the ranking,
bnnbench.report.render and bnnbench.report.html render them, `write_report` writes everything.

leaderboard.csv: one row per dataset × arch × variant × binarizer × setting, columns in the
order of LEADERBOARD_COLUMNS (stable; new columns are only ever appended):

  dataset, arch, variant, binarizer   what was trained (variant = the model's `variant` label)
  setting          the binarizer parameters and cell overrides (recipe, stage_recipes, epochs,
                   total_epochs, budget, subset) whose values differ between cells of the same
                   binarizer, e.g. "omega0=20"; empty when nothing was swept. Each value is
                   its own row.
  n_seeds          finished cells (only these enter means, stds and bests)
  top1_mean, top1_std   final-epoch top-1 (%) over finished seeds; std is the sample std
                   (ddof=1, pandas' default), NaN with fewer than two seeds
  top1_best        the highest final-epoch top-1 among the seeds
  peak_top1_mean   mean over seeds of each run's best-epoch top-1 (what official codes print)
  top5_mean, top5_std   final-epoch top-5 (%)
  epochs           total epochs of a run over all its stages (result.json; the planned epochs
                   of config.json or of the expected cell when none finished)
  published_top1, published_top5, published_source   the matching row of the reference data
                   (bnnbench.report.published.match_published), NaN/empty when none was
                   published
  delta_top1       top1_mean − published_top1 (percentage points)
  params           parameter count (result.json / config.json, else the complexity count)
  ops, bops, flops, size_bits   per image, from bnnbench.models.complexity (ops = bops/64 + flops;
                   size: 1 bit per binary weight, 32 per other parameter); NaN if not computable
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
                   choice): a selection on the test set, marked † in every format
  n_stale          run folders of this dataset × arch × binarizer trained with a resolved
                   recipe that differs from today's (their id is not the one today's code gives
                   their config), or with binarizer code whose source file has changed since
                   (store.reader.stale_reason). They are in no row's numbers; leaderboard.md
                   names them below the table; `run` trains a cell whose recipe changed under
                   its new id, and one whose code changed with --rerun-stale
  top1_ci95        half-width of the 95 % confidence interval of top1_mean, Student's t with
                   n_seeds − 1 degrees of freedom (NaN below two seeds)
  best             marked best of its column (dataset × arch × variant): a tied leader, ahead
                   of the others by more than the noise (Welch's t-test at 5 %,
                   bnnbench.report.stats); never a full-precision row
  steps            mean over finished seeds of the optimiser steps of all stages (result.json)
  stage_epochs     the epochs of each stage, e.g. "5+5" (config.json; planned for expected
                   cells)
  published_note   the reference note of the published number (a footnote in every format)
  kd               True when the row's runs trained by knowledge distillation (recipe distill),
                   marked § in every format
  teacher          the ids of the teacher cells they distilled from
                   (bnnbench.experiment.teachers)
  distill          their distillation losses (e.g. "distribution", ReActNet's)
  binarizer/<key>_mean   after those, one column per quantity a binarizer records (its
                   `metrics()`, result.json's final binarizer/<key>), sorted by key: the mean
                   over finished seeds, NaN where a row's binarizer has no such quantity; e.g.
                   BiPer's binarizer/b_mean (mean |W|) and binarizer/qe_mean (mean QE of the
                   binary layers)
Rows of a grid that has not run yet have n_seeds 0 and NaN results, never zeros.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..errors import BnnbenchError
from ..store import binarizer_metrics
from . import stats
from .collect import LEFT_OUT, collect_cells, collect_metrics, model_counts, run_stores
from .published import match_published
from .render import to_latex, to_markdown
from .tables import natural

LEADERBOARD_COLUMNS = [
    "dataset", "arch", "variant", "binarizer", "setting",
    "n_seeds", "top1_mean", "top1_std", "top1_best", "peak_top1_mean", "top5_mean", "top5_std",
    "epochs", "published_top1", "published_top5", "published_source", "delta_top1",
    "params", "ops", "bops", "flops", "size_bits",
    "gpu_hours", "cpu_hours", "n_failed", "n_partial", "n_new", "n_missing", "seeds", "hardware",
    "n_stale", "start_on_test", "top1_ci95", "best", "steps", "stage_epochs", "published_note",
    "kd", "teacher", "distill",
]
__all__ = ["LEADERBOARD_COLUMNS", "collect_cells", "collect_metrics", "leaderboard",
           "left_out_note", "records", "to_latex", "to_markdown", "write_report"]
_STATUSES = ("failed", "partial", "new", "missing")
_INT_COLUMNS = ("epochs", "params", "bops", "flops", "size_bits", "steps")


def _mean(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.mean()) if len(s) else math.nan


def is_binary(binarizer: str) -> bool:
    """Whether an entry is a BNN (a contender, compared with 1/1 published numbers) rather than
    a full-precision reference (`binary = False`, e.g. fp); a binarizer whose plugin is not
    loaded counts as binary."""
    from ..api import registry
    try:
        return registry.get(binarizer).binary
    except BnnbenchError:
        return True


def _aggregate(group: pd.DataFrame, counts: bool) -> dict:
    fin = group[group["status"] == "finished"]
    first = group.iloc[0]
    pub = match_published(first["dataset"], first["arch"], first["binarizer"],
                          first["variant"] or None,
                          bits="1/1" if is_binary(first["binarizer"]) else "32/32")
    cuda = fin["device"].fillna("").str.startswith("cuda")
    cpu = fin["device"].fillna("").str.startswith("cpu")
    epochs = fin["epochs"].max() if len(fin) else group["planned_epochs"].max()
    model = {}
    if counts:
        bz = {"name": first["binarizer"], **first["binarizer_params"]}
        model = model_counts(first["dataset"], first["arch"], json.dumps(bz, sort_keys=True))
    params = group["params"].dropna()
    top1_mean = _mean(fin["top1"])
    published_top1 = float(pub["top1"]) if pub is not None else math.nan
    row = {
        "n_seeds": len(fin),
        "top1_mean": top1_mean,
        "top1_std": float(fin["top1"].std(ddof=1)) if len(fin) > 1 else math.nan,
        "top1_ci95": stats.ci95(fin["top1"]),
        "top1_best": float(fin["top1"].max()) if len(fin) else math.nan,
        "peak_top1_mean": _mean(fin["best_top1"]),
        "top5_mean": _mean(fin["top5"]),
        "top5_std": float(fin["top5"].std(ddof=1)) if len(fin) > 1 else math.nan,
        "epochs": epochs,
        "stage_epochs": (fin if len(fin) else group)["stage_epochs"].iloc[0],
        "steps": _mean(fin["steps"]),
        "published_top1": published_top1,
        "published_top5": float(pub["top5"]) if pub is not None else math.nan,
        "published_source": pub["source"] if pub is not None else "",
        "published_note": pub["note"] if pub is not None else "",
        "delta_top1": top1_mean - published_top1,
        "params": float(params.iloc[0]) if len(params) else model.get("params", math.nan),
        "ops": model.get("ops", math.nan), "bops": model.get("bops", math.nan),
        "flops": model.get("flops", math.nan), "size_bits": model.get("size_bits", math.nan),
        "gpu_hours": _mean(fin.loc[cuda, "seconds"]) / 3600,
        "cpu_hours": _mean(fin.loc[cpu, "seconds"]) / 3600,
        "seeds": ",".join(str(int(s)) for s in sorted(fin["seed"].dropna())),
        "hardware": " | ".join(sorted(set(fin["hardware"].dropna()))),
        "start_on_test": bool(fin["start_on_test"].fillna(False).astype(bool).any()),
        "kd": bool(group["teacher"].fillna("").astype(bool).any()),
        "teacher": _joined(group["teacher"]), "distill": _joined(group["distill"]),
        **{f"{col}_mean": _mean(fin[col]) for col in _quantities(group)},
    }
    for status in _STATUSES:
        row[f"n_{status}"] = int((group["status"] == status).sum())
    return row


def _quantities(cells: pd.DataFrame) -> list[str]:
    """The binarizer/<key> columns of `collect_cells`' rows."""
    return [col for col in cells if col.startswith(binarizer_metrics.PREFIX)]


def _joined(values: pd.Series) -> str:
    """The distinct entries of comma-joined texts, joined again."""
    return ", ".join(dict.fromkeys(v for text in values.fillna("") for v in text.split(", ")
                                   if v))


def leaderboard(cells: pd.DataFrame, *, counts: bool = True) -> pd.DataFrame:
    """Aggregate `collect_cells`' rows into LEADERBOARD_COLUMNS and a binarizer/<key>_mean per
    quantity, one row per dataset × arch × variant × binarizer × setting; `counts=False` skips
    the op counts."""
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
    board = board.sort_values(keys, key=lambda col: col.map(lambda v: natural(str(v))))
    board = board.reset_index(drop=True)
    board["best"] = stats.best_flags(board, board["binarizer"].map(is_binary))
    board = board[LEADERBOARD_COLUMNS + [f"{col}_mean" for col in _quantities(cells)]]
    for col in ("n_seeds", "n_stale", *(f"n_{s}" for s in _STATUSES)):
        board[col] = board[col].astype(int)
    for col in _INT_COLUMNS:  # whole numbers, empty (not 0) where unknown
        board[col] = pd.to_numeric(board[col]).round().astype("Int64")
    return board


def ranking(board: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """stats.ranking over the binarizers of `board` (full-precision rows left out)."""
    return stats.ranking(board[board["binarizer"].map(is_binary)], cells)


# --- writing everything ------------------------------------------------------------------------
def write_report(stores: Iterable[str | Path], out: str | Path, *, expected: Iterable[Any] = (),
                 figures: bool = True, counts: bool = True) -> dict[str, Any]:
    """Read `stores` (each folder once), write leaderboard.csv/.md/.tex/.html, ranking.csv and
    figures/ (PNG + SVG) into `out`. Returns {"cells", "leaderboard", "ranking", "markdown",
    "files"}."""
    runs = run_stores(stores)
    cells = collect_cells(runs, expected)
    if cells.empty:
        raise BnnbenchError(f"no cell folders (config.json) under "
                            f"{', '.join(str(r.path) for r in runs)}; "
                            "run `bnnbench run` or `bnnbench train` first, or pass the right "
                            "folder")
    board = leaderboard(cells, counts=counts)
    rank = ranking(board, cells)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    left_out = left_out_note(cells)
    markdown = to_markdown(board, rank) + left_out
    board.to_csv(out / "leaderboard.csv", index=False)
    rank.to_csv(out / "ranking.csv", index=False)
    (out / "leaderboard.md").write_text(markdown)
    (out / "leaderboard.tex").write_text(to_latex(board, rank))
    files = [out / n for n in ("leaderboard.csv", "ranking.csv", "leaderboard.md",
                               "leaderboard.tex")]
    drawn: list[Path] = []
    if figures:
        from . import figures as fig
        drawn = fig.write_all(cells, board, collect_metrics(cells, runs), out / "figures")
    from .html import to_html
    (out / "leaderboard.html").write_text(to_html(board, rank, drawn, left_out))
    files += [out / "leaderboard.html", *drawn]
    return {"cells": cells, "leaderboard": board, "ranking": rank, "markdown": markdown,
            "files": files}


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


def records(board: pd.DataFrame) -> list[dict]:
    """The leaderboard as JSON-ready dicts (NaN → None)."""
    return [{k: (None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else
                 v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
            for r in board.to_dict(orient="records")]
