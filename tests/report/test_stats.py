"""bnnbench.report.stats on run stores built here with known values: CI, Welch tie rule, ranks."""
from __future__ import annotations

import math
import statistics

import pytest
from runstores import write_cell
from scipy import stats as st

from bnnbench.report.leaderboard import collect_cells, leaderboard, ranking


def _board(store):
    cells = collect_cells([store])
    return leaderboard(cells, counts=False), cells


def _row(board, binarizer, arch="resnet20"):
    sel = board[(board.binarizer == binarizer) & (board.arch == arch)]
    assert len(sel) == 1
    return sel.iloc[0]


def _cells(store, binarizer, values, arch="resnet20"):
    for seed, top1 in enumerate(values):
        write_cell(store, arch=arch, binarizer={"name": binarizer}, seed=seed, top1=top1)


def _welch_p(a, b):
    """Welch's two-sided p by hand: t = Δ/√(s²a/na + s²b/nb), Welch–Satterthwaite df."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return 2 * st.t.sf(abs(t), df)


def test_n_mean_std_and_95_ci_over_seeds(tmp_path):
    values = [86.0, 87.0, 88.5, 85.5]
    _cells(tmp_path, "recu", values)
    _cells(tmp_path, "xnor", [80.0])
    board, _ = _board(tmp_path)
    r = _row(board, "recu")
    lo, hi = st.t.interval(0.95, len(values) - 1, loc=statistics.mean(values),
                           scale=statistics.stdev(values) / math.sqrt(len(values)))
    assert (r["n_seeds"], r["top1_mean"]) == (4, pytest.approx(statistics.mean(values)))
    assert r["top1_std"] == pytest.approx(statistics.stdev(values))
    assert r["top1_ci95"] == pytest.approx((hi - lo) / 2)
    assert math.isnan(_row(board, "xnor")["top1_ci95"])   # one seed: no interval


def test_best_only_when_ahead_by_more_than_the_noise(tmp_path):
    clear, close, far = [90.0, 90.2, 90.1], [89.9, 90.3, 90.0], [80.0, 80.2, 80.1]
    assert _welch_p(clear, close) > 0.05 and _welch_p(clear, far) < 0.05
    _cells(tmp_path, "recu", clear)
    _cells(tmp_path, "irnet", close)
    _cells(tmp_path, "xnor", far)
    # vgg_small: one leader far ahead of the runner-up, by more than the noise
    _cells(tmp_path, "recu", [92.0, 92.1, 91.9], arch="vgg_small")
    _cells(tmp_path, "irnet", [88.0, 88.4, 88.2], arch="vgg_small")
    _cells(tmp_path, "fp", [95.0, 95.1, 95.2], arch="vgg_small")   # a reference, not a rival
    board, _ = _board(tmp_path)
    best = {(r.arch, r.binarizer) for r in board.itertuples() if r.best}
    assert best == {("resnet20", "recu"), ("resnet20", "irnet"), ("vgg_small", "recu")}


def test_a_one_seed_leader_is_never_significantly_best(tmp_path):
    # the case: 42.78 ± 8.99 over 3 seeds was bold over a one-seed 33.89
    _cells(tmp_path, "biper", [33.0, 44.0, 51.34])
    _cells(tmp_path, "recu", [33.89])
    board, _ = _board(tmp_path)
    assert not board["best"].any()
    # one seed ahead of three: it cannot be told apart either (no variance to test)
    _cells(tmp_path, "xnor", [60.0])
    assert not _board(tmp_path)[0]["best"].any()


def test_ranking_mean_rank_over_archs_and_its_stability_over_seeds(tmp_path):
    # resnet20 means: recu 87, xnor 87, irnet 80.5 -> ranks 1.5, 1.5, 3
    _cells(tmp_path, "recu", [88.0, 86.0])
    _cells(tmp_path, "xnor", [87.0, 87.0])
    _cells(tmp_path, "irnet", [80.0, 81.0])
    # vgg_small means: xnor 90.25, recu 90, irnet 88.5 -> ranks 1, 2, 3
    _cells(tmp_path, "recu", [90.0, 90.0], arch="vgg_small")
    _cells(tmp_path, "xnor", [91.0, 89.5], arch="vgg_small")
    _cells(tmp_path, "irnet", [85.0, 92.0], arch="vgg_small")
    _cells(tmp_path, "fp", [99.0, 99.0], arch="vgg_small")   # not ranked
    board, cells = _board(tmp_path)
    rank = ranking(board, cells).set_index("binarizer")
    assert list(rank.index) == ["xnor", "recu", "irnet"]
    assert rank["mean_rank"].to_dict() == {"xnor": 1.25, "recu": 1.75, "irnet": 3.0}
    # per seed, mean over archs: seed 0 recu (1+2)/2, xnor (2+1)/2, irnet 3;
    # seed 1: recu (2+2)/2, xnor (1+3)/2, irnet (3+1)/2
    assert rank.loc["recu", ["rank_min", "rank_max"]].tolist() == [1.5, 2.0]
    assert rank.loc["irnet", ["rank_min", "rank_max"]].tolist() == [2.0, 3.0]
    assert rank.loc["irnet", "rank_sd"] == pytest.approx(statistics.stdev([3.0, 2.0]))
    assert rank.loc["xnor", "rank_sd"] == pytest.approx(statistics.stdev([1.5, 2.0]))
    assert (rank["archs"] == 2).all() and (rank["seeds"] == "0,1").all()


def test_a_seed_only_some_rows_ran_is_not_ranked(tmp_path):
    _cells(tmp_path, "recu", [88.0, 86.0, 70.0])     # seed 2 only for recu
    _cells(tmp_path, "xnor", [87.0, 87.0])
    rank = ranking(*_board(tmp_path)).set_index("binarizer")
    assert rank.loc["recu", "seeds"] == "0,1"
    assert rank.loc["recu", ["rank_min", "rank_max"]].tolist() == [1.0, 2.0]
