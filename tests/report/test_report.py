"""bnnbench.report / figures / published on a run store written by hand with known numbers."""
from __future__ import annotations

import json
import math
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from runstores import BIPER_20, RECU, make_store, write_cell

from bnnbench.binarizers.biper import qe_closed_form
from bnnbench.experiment.cell import CellConfig
from bnnbench.experiment.resolve import resolve
from bnnbench.report.leaderboard import (LEADERBOARD_COLUMNS, collect_cells, leaderboard,
                                         to_markdown, write_report)
from bnnbench.report.published import load_reference, match_published
from bnnbench.store import records, runstore
from bnnbench.store.reader import CellRecord


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def board(store) -> pd.DataFrame:
    return leaderboard(collect_cells([store]), counts=False)


def _row(board, **key) -> pd.Series:
    sel = board
    for k, v in key.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


# --- reference data ---------------------------------------------------------------------------
def test_reference_ships_every_published_number_with_a_source():
    ref = load_reference()
    assert list(ref["dataset"].unique()) == ["cifar10", "imagenet"]
    assert (ref["source"] != "").all()
    assert ref["top1"].notna().all()
    biper_r20 = ref[(ref.binarizer == "biper") & (ref.arch == "resnet20")]
    assert sorted(biper_r20["top1"]) == [86.98, 87.5]  # both sources kept
    rbnn = ref[(ref.method == "RBNN") & (ref.dataset == "cifar10")]
    assert {("resnet20_std", 86.5), ("resnet20", 87.8)} <= set(zip(rbnn.arch, rbnn.top1))
    recu = ref[(ref.binarizer == "recu") & (ref.dataset == "imagenet")].set_index("arch")
    assert recu.loc["resnet34", "top5"] == 85.78
    # 1/1 only, official README first, a number published for another backbone never matches
    assert match_published("cifar10", "resnet20", "biper", "bireal-shortcut")["top1"] == 86.98
    assert match_published("cifar10", "resnet20", "irnet", "bireal-shortcut")["top1"] == 86.5
    assert match_published("cifar10", "resnet20", "xnor", "bireal-shortcut")["top1"] == 85.23
    assert match_published("cifar10", "resnet18", "irnet", "bireal-shortcut") is None
    assert match_published("cifar10", "resnet20", "my_plugin") is None


# --- the leaderboard ------------------------------------------------------------------------------
QUANTITIES = ["binarizer/b_mean", "binarizer/qe_mean"]   # BiPer's, after the fixed columns


def test_columns_are_the_documented_order(board, store, tmp_path):
    assert list(board.columns) == LEADERBOARD_COLUMNS + QUANTITIES
    from bnnbench.report import leaderboard as report
    doc = report.__doc__
    positions = [doc.index(c) for c in ("n_seeds", "top1_mean", "published_top1", "delta_top1",
                                        "gpu_hours", "n_failed", "hardware", "distill",
                                        "binarizer/<key>_mean")]
    assert positions == sorted(positions)
    write_report([store], tmp_path, figures=False, counts=False)
    assert list(pd.read_csv(tmp_path / "leaderboard.csv").columns) == \
        LEADERBOARD_COLUMNS + QUANTITIES


def test_means_stds_delta_exact(board):
    r = _row(board, dataset="cifar10", arch="resnet20", binarizer="biper", setting="omega0=20")
    assert r["n_seeds"] == 3
    assert r["top1_mean"] == pytest.approx(statistics.mean(BIPER_20), abs=1e-12)
    assert r["top1_std"] == pytest.approx(statistics.stdev(BIPER_20), abs=1e-12)  # ddof=1
    assert r["top1_best"] == 88.5
    assert r["peak_top1_mean"] == pytest.approx(statistics.mean(BIPER_20) + 0.5)
    assert r["published_top1"] == 86.98 and r["published_source"] == "BiPer official README"
    assert r["delta_top1"] == pytest.approx(statistics.mean(BIPER_20) - 86.98, abs=1e-12)
    assert r["epochs"] == 4 and r["seeds"] == "0,1,2" and r["variant"] == "bireal-shortcut"
    assert r["gpu_hours"] == pytest.approx(1.0) and math.isnan(r["cpu_hours"])
    assert r["binarizer/qe_mean"] == pytest.approx(np.mean([qe_closed_form(b * 20) for b in
                                                            (0.04, 0.045, 0.05)]))
    assert r["binarizer/b_mean"] == pytest.approx(0.045)
    assert r["params"] == 270522


def _as_written_before_the_namespace(store: Path) -> None:
    """Rewrite a store's records as bnnbench wrote them before binarizer/<key>: a bare qe and b
    in every metrics row and finished result.json (qe None for a binarizer without one)."""
    def bare(record: dict) -> dict:
        own = {k: v for k, v in record.items() if not k.startswith("binarizer/")}
        return {**own, "qe": record.get("binarizer/qe"), "b": record.get("binarizer/b")}

    for path in store.rglob(runstore.RESULT):
        result = json.loads(path.read_text())
        if result["status"] == "finished":
            records.write_result(path.parent, bare(result))
    for path in store.rglob(runstore.METRICS):
        records.write_metrics(path.parent, [bare(json.loads(line))
                                            for line in path.read_text().splitlines()])


def test_an_old_store_reports_the_same_numbers(board, store, tmp_path):
    old = make_store(tmp_path / "old")
    _as_written_before_the_namespace(old)
    biper = "cifar10-resnet20-biper-20.0-s0"
    assert {"qe", "b"} <= set(json.loads((old / biper / runstore.RESULT).read_text()))
    old_board = leaderboard(collect_cells([old]), counts=False)
    pd.testing.assert_frame_equal(old_board, board)
    r = _row(old_board, dataset="cifar10", arch="resnet20", binarizer="biper", setting="omega0=20")
    assert r["binarizer/qe_mean"] == pytest.approx(np.mean([qe_closed_form(b * 20) for b in
                                                            (0.04, 0.045, 0.05)]))
    assert r["binarizer/b_mean"] == pytest.approx(0.045)
    for path in store.rglob(runstore.METRICS):   # every row reads back as today's (None: none)
        today = [{k: v for k, v in row.items() if v is not None}
                 for row in CellRecord(path.parent).metrics]
        assert CellRecord(old / path.parent.relative_to(store)).metrics == today


def test_cells_trained_with_an_older_recipe_are_stale_not_averaged(tmp_path, monkeypatch):
    store = make_store(tmp_path / "runs", imagenet=False)
    # the official CIFAR-10 recipe of BiPer changes after these cells were trained
    from bnnbench.api import registry
    biper = registry.get("biper")
    changed = {**biper.recipes["cifar10"]["binary"], "binarizer": {"reg_tau": 0.05}}
    monkeypatch.setitem(biper.recipes, "cifar10", {**biper.recipes["cifar10"], "binary": changed})
    result = write_report([store], tmp_path / "out", figures=False, counts=False)
    cells, board = result["cells"], result["leaderboard"]
    assert set(cells.loc[cells.binarizer == "biper", "status"]) == {"stale"}
    assert set(cells.loc[cells.binarizer == "recu", "status"]) == {"finished", "failed"}
    assert not (board.binarizer == "biper").any()          # in no row's numbers
    recu = _row(board, binarizer="recu")
    assert recu["n_seeds"] == 2 and recu["n_stale"] == 0
    assert "Left out: 7 stale run folder(s)" in result["markdown"]
    assert "cifar10-resnet20-biper-20.0-s0" in result["markdown"]
    monkeypatch.undo()                                      # today's recipe again: current
    board = leaderboard(collect_cells([store]), counts=False)
    assert _row(board, binarizer="biper", setting="omega0=20")["n_seeds"] == 3


def test_a_stage_started_from_the_best_test_epoch_is_marked(tmp_path):
    store = tmp_path / "runs"
    two = ("sine", "binary")
    write_cell(store, top1=86.0, stage_names=two, init_from="best")
    write_cell(store, arch="resnet18", top1=90.0, stage_names=two)   # the same row, unmarked
    write_cell(store, binarizer={"name": "recu"}, top1=87.0)
    result = write_report([store], tmp_path / "out", figures=False, counts=False)
    board = result["leaderboard"]
    assert list(board["start_on_test"]) == [False, True, False]   # biper r18, r20, recu r20
    assert "| biper † |" in result["markdown"] and "| recu |" in result["markdown"]
    assert "† a later stage started from the previous stage's epoch of best test" in \
        result["markdown"]


def test_swept_parameter_splits_rows_and_others_do_not(board):
    biper = board[(board.dataset == "cifar10") & (board.binarizer == "biper")]
    assert list(biper["setting"]) == ["omega0=10", "omega0=20", "omega0=30"]  # numeric order
    # reg_tau is the same in every cell (its stage values are recipes): not a setting
    assert (board[board.binarizer != "biper"]["setting"] == "").all()
    imagenet = _row(board, dataset="imagenet", binarizer="biper")
    assert imagenet["setting"] == "omega0=20" and imagenet["published_top1"] == 61.40


def test_failed_cells_are_counted_not_averaged(board):
    r = _row(board, dataset="cifar10", binarizer="recu")
    assert (r["n_seeds"], r["n_failed"]) == (2, 1)
    assert r["top1_mean"] == pytest.approx(87.5, abs=1e-12)
    assert r["top1_std"] == pytest.approx(statistics.stdev(RECU), abs=1e-12)
    assert r["cpu_hours"] == pytest.approx(2.0) and math.isnan(r["gpu_hours"])
    assert r["published_top1"] == 87.5 and r["delta_top1"] == pytest.approx(0.0, abs=1e-12)


def test_cells_not_run_are_missing_not_zero(board, store):
    r = _row(board, binarizer="irnet")
    assert (r["n_seeds"], r["n_new"]) == (0, 1)
    for col in ("top1_mean", "top1_std", "top1_best", "top5_mean", "delta_top1",
                "binarizer/qe_mean", "gpu_hours"):
        assert math.isnan(r[col]), col
    assert r["published_top1"] == 91.5  # the published number is still there to compare with
    assert r["epochs"] == 4  # planned
    one = _row(board, binarizer="xnor")
    assert one["n_seeds"] == 1 and math.isnan(one["top1_std"])
    # a grid's expected cell without any folder: a row with n_seeds 0 and n_missing 1
    expected = [resolve(CellConfig(dataset="cifar10", arch="vgg_small", binarizer="recu"))]
    with_expected = leaderboard(collect_cells([store], expected), counts=False)
    miss = _row(with_expected, arch="vgg_small", binarizer="recu")
    assert (miss["n_seeds"], miss["n_missing"]) == (0, 1) and math.isnan(miss["top1_mean"])
    assert miss["variant"] == "plain" and miss["published_top1"] == 92.2


def test_op_counts_from_the_models(store):
    cells = collect_cells([store])
    board = leaderboard(cells[cells["binarizer"] == "recu"], counts=True)  # one model build
    r = _row(board, dataset="cifar10", arch="resnet20", binarizer="recu")
    assert r["bops"] > 0 and r["flops"] > 0
    assert r["ops"] == pytest.approx(r["bops"] / 64 + r["flops"])
    assert r["size_bits"] < 32 * r["params"]


def test_markdown_has_published_in_parentheses_and_budget_in_the_header(board):
    md = to_markdown(board)
    assert "## cifar10" in md and "## imagenet" in md
    assert "| binarizer | resnet18 (4 epochs) | resnet20 (4 epochs) | vgg_small (4 epochs) |" in md
    line = next(l for l in md.splitlines() if l.startswith("| recu |"))
    mean, std = statistics.mean(RECU), statistics.stdev(RECU)
    # the leader of resnet20, but 2 seeds each cannot tell it from biper: no bold
    assert f"| {mean:.2f} ± {std:.2f} (87.50) |" in line and "**" not in md.split("## imagenet")[0]
    line = next(l for l in md.splitlines() if l.startswith("| biper (omega0=20) |"))
    assert f"{statistics.mean(BIPER_20):.2f} ± {statistics.stdev(BIPER_20):.2f} (86.98¹)" in line
    assert "– (91.50)" in md  # irnet resnet18 not run yet: no number, published kept
    assert "| 89.00 (89.80) |" in md  # alone in its column: nothing to be best against


def test_cli_report_prints_formats(store, tmp_path):
    from click.testing import CliRunner

    from bnnbench.cli.main import cli
    out = tmp_path / "lb"
    res = CliRunner().invoke(cli, ["report", str(store), "--out", str(out), "--format", "json",
                                   "--no-figures", "--no-counts"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 7 and list(rows[0]) == LEADERBOARD_COLUMNS + QUANTITIES
    assert (out / "leaderboard.md").exists()
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "nowhere"), "--out", str(out)])
    assert res.exit_code != 0


# --- figures -------------------------------------------------------------------------------
def test_figures_written_and_non_empty(tmp_path):
    store = make_store(tmp_path / "runs", imagenet=False)  # one dataset: 4 figures, ~10 s
    result = write_report([store], tmp_path / "out", counts=False)
    names = {p.name for p in result["files"]}
    assert len([n for n in names if n.endswith((".png", ".svg"))]) == 8
    for stem in ("top1_cifar10", "curves_cifar10", "qe_omega0",
                 "omega0_sweep_cifar10_resnet20_biper"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names, stem
    for path in result["files"]:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert path.stat().st_size > 20_000, path
        elif path.suffix == ".svg":
            assert ET.parse(path).getroot().tag.endswith("svg")


def test_a_single_run_folder_is_a_store(tmp_path):
    cell = write_cell(tmp_path, binarizer={"name": "xnor"}, top1=80.0)  # `bnnbench train --out`
    cells = collect_cells([cell])
    assert len(cells) == 1 and cells.iloc[0]["status"] == "finished"
    with pytest.raises(Exception, match="does not exist"):
        collect_cells([tmp_path / "nowhere"])


def test_damaged_records_are_named_and_in_no_number(tmp_path):
    store = tmp_path / "runs"
    good = write_cell(store, binarizer={"name": "recu"}, top1=87.0)
    torn = write_cell(store, binarizer={"name": "recu"}, seed=1, top1=10.0)
    (torn / runstore.RESULT).write_text('{"status": "finished", "top1": 1')      # truncated
    garbage = write_cell(store, binarizer={"name": "xnor"}, top1=80.0)
    with open(garbage / runstore.METRICS, "a") as fh:
        fh.write("\x00\x00 not json\n")
    lost = write_cell(store, binarizer={"name": "irnet"}, top1=70.0)
    (lost / runstore.CONFIG).write_bytes(b"\xff\xfe")
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    result = write_report([store], tmp_path / "out", counts=False)
    board, md = result["leaderboard"], result["markdown"]
    assert list(board["binarizer"]) == ["recu"] and _row(board, binarizer="recu")["n_seeds"] == 1
    assert _row(board, binarizer="recu")["top1_mean"] == 87.0
    assert "Left out: 3 run folder(s) with a damaged record" in md
    assert f"{torn / runstore.RESULT} is damaged (not valid JSON" in md
    assert f"{garbage / runstore.METRICS}:5 is damaged (not a JSON line" in md
    assert f"{lost / runstore.CONFIG} is damaged" in md
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before
    assert good.exists()


def test_the_fp_row_stands_beside_the_published_fp32_baseline(tmp_path):
    store = tmp_path / "runs"
    write_cell(store, binarizer={"name": "fp"}, top1=91.0)
    board = write_report([store], tmp_path / "out", figures=False)["leaderboard"]
    fp = _row(board, binarizer="fp")
    assert fp["published_top1"] == 92.1 and "FDA" in fp["published_source"]
    assert fp["bops"] == 0 and fp["flops"] > 0 and fp["size_bits"] % 32 == 0
