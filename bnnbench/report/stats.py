"""Statistics over seeds: the numbers a reviewer asks for before believing a "best".

Per leaderboard row: n, mean, sample std (ddof=1) and the half-width of a 95 % confidence
interval of the mean from Student's t-distribution, t(0.975, n−1)·s/√n (NaN below two seeds).

The best of a column (one dataset × arch × variant, binarizers only: a full-precision row is a
reference, not a contender) is decided by Welch's two-sided t-test at 5 % between the leader
(highest mean) and each other row. The tied leaders are the leader and every row it is not
significantly ahead of; a row with fewer than two seeds can never be told apart (no variance),
so a one-seed leader ties with everyone. The tied leaders are marked best together, unless
they are the whole column (two rows or more): then nothing is marked, as no row is ahead by
more than the noise. A column with a single result marks nothing.

The ranking per dataset ranks the rows of each column by mean top-1 (1 = best, ties share the
average rank) and averages over archs; its stability across seeds ranks the rows by each
seed's top-1 alone (only where every row of the column ran that seed), averages over archs per
seed, and gives the range and sample std of those per-seed mean ranks.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as st

ALPHA = 0.05       # Welch's t-test level for "ahead by more than the noise"
COLUMN = ["dataset", "arch", "variant"]    # the cells of one column of the paper's table
ENTRY = ["binarizer", "setting"]           # the rows of the paper's table
RANKING_COLUMNS = ["dataset", "binarizer", "setting", "archs", "mean_rank", "rank_min",
                   "rank_max", "rank_sd", "seeds"]


def ci95(values: pd.Series) -> float:
    """Half-width of the 95 % t-interval of the mean of `values` (NaN below two values)."""
    values = values.dropna()
    n = len(values)
    if n < 2:
        return math.nan
    return float(st.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def ahead(leader: pd.Series, other: pd.Series) -> bool:
    """Whether `leader` (a row with top1_mean, top1_std, n_seeds) is ahead of `other` by more
    than the noise: Welch's two-sided t-test at ALPHA, both with two seeds or more."""
    if leader["n_seeds"] < 2 or other["n_seeds"] < 2:
        return False
    if leader["top1_std"] == 0 and other["top1_std"] == 0:   # no noise at all
        return leader["top1_mean"] > other["top1_mean"]
    _, p = st.ttest_ind_from_stats(leader["top1_mean"], leader["top1_std"], leader["n_seeds"],
                                   other["top1_mean"], other["top1_std"], other["n_seeds"],
                                   equal_var=False)
    return bool(p < ALPHA) and leader["top1_mean"] > other["top1_mean"]


def tied_leaders(column: pd.DataFrame) -> list:
    """Index labels of the rows of one column marked best (see the module docstring)."""
    scored = column[column["n_seeds"] > 0].sort_values("top1_mean", ascending=False)
    if len(scored) < 2:
        return []
    leader = scored.iloc[0]
    tied = [i for i, row in scored.iterrows() if i == scored.index[0] or not ahead(leader, row)]
    return [] if len(tied) == len(scored) else tied


def best_flags(board: pd.DataFrame, contenders: pd.Series) -> pd.Series:
    """Per leaderboard row, whether it is marked best of its column; `contenders` says which
    rows compete (binarizers, not the full-precision reference)."""
    flags = pd.Series(False, index=board.index)
    for _, column in board[contenders].groupby(COLUMN, sort=False, dropna=False):
        flags[tied_leaders(column)] = True
    return flags


def _ranks(values: pd.DataFrame, score: str) -> pd.Series:
    """Rank of each row within its column by `score` (1 = highest, ties averaged)."""
    return values.groupby(COLUMN, dropna=False)[score].rank(ascending=False, method="average")


def _complete_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the (column, seed) pairs where every row of the column has that seed: a
    seed only some rows ran would rank them among fewer rivals."""
    entry = runs[ENTRY].astype(str).agg("|".join, axis=1)
    column = [runs[c] for c in COLUMN]
    rows = entry.groupby(column, dropna=False).transform("nunique")
    present = entry.groupby(column + [runs["seed"]], dropna=False).transform("nunique")
    return runs[present == rows].copy()


def ranking(board: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × binarizer × setting of `board` (the contenders) with results: archs
    ranked over, mean_rank (of the mean top-1 per arch), and over seeds the per-seed mean
    rank's rank_min, rank_max, rank_sd, with the seeds used (`cells`: collect_cells' rows)."""
    scored = board[board["n_seeds"] > 0].copy()
    if scored.empty:
        return pd.DataFrame(columns=RANKING_COLUMNS)
    scored["rank"] = _ranks(scored, "top1_mean")
    runs = _complete_seeds(cells[cells["status"] == "finished"].merge(scored[COLUMN + ENTRY],
                                                                       on=COLUMN + ENTRY))
    runs["rank"] = runs.groupby(COLUMN + ["seed"], dropna=False)["top1"].rank(
        ascending=False, method="average")
    per_seed = runs.groupby(["dataset", *ENTRY, "seed"], dropna=False)["rank"].mean()
    rows = []
    for key, group in scored.groupby(["dataset", *ENTRY], sort=False, dropna=False):
        seeds = per_seed.loc[key] if key in per_seed.index.droplevel("seed") else \
            pd.Series(dtype=float)
        rows.append({**dict(zip(["dataset", *ENTRY], key)), "archs": len(group),
                     "mean_rank": float(group["rank"].mean()),
                     "rank_min": float(seeds.min()) if len(seeds) else math.nan,
                     "rank_max": float(seeds.max()) if len(seeds) else math.nan,
                     "rank_sd": float(np.std(seeds, ddof=1)) if len(seeds) > 1 else math.nan,
                     "seeds": ",".join(str(int(s)) for s in seeds.index)})
    table = pd.DataFrame(rows, columns=RANKING_COLUMNS)
    return table.sort_values(["dataset", "mean_rank"], kind="stable").reset_index(drop=True)
