"""bnnbench.report.figures: sizes a reader can use, shared axes, a binarizer's own figures (BiPer's
QE and ω0 sweeps, through its report hook) only where its cells are, sweeps that never join
different settings."""
from __future__ import annotations

import struct

import pandas as pd
from runstores import BIPER, write_cell

from bnnbench.api import registry
from bnnbench.report.figures import MAX_WIDTH_IN, FigureKit, plot_top1
from bnnbench.report.leaderboard import collect_cells, collect_metrics, leaderboard, write_report
from bnnbench.store.reader import RunStore


def _png_size(path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


def test_one_figure_per_dataset_at_most_1600_px_with_a_shared_y_axis(tmp_path):
    store = tmp_path / "runs"
    names = ["sign_ste", "xnor", "bireal", "irnet", "reactnet", "recu", "biper", "fp"]
    for arch in ("resnet18", "resnet20", "vgg_small"):
        for i, name in enumerate(names):
            spec = BIPER if name == "biper" else {"name": name}
            write_cell(store, arch=arch, binarizer=spec, top1=80.0 + i, metrics=False)
    cells = collect_cells([store])
    board = leaderboard(cells, counts=False)
    fig = plot_top1(cells, board, "cifar10")
    axes = fig.axes
    assert len(axes) == 3
    assert all(axes[0].get_shared_y_axes().joined(axes[0], ax) for ax in axes[1:])
    files = write_report([store], tmp_path / "out", counts=False)["files"]
    pngs = [p for p in files if p.suffix == ".png"]
    assert [p.stem for p in pngs] == ["top1_cifar10", "qe_omega0"]   # biper has an ω0
    for png in pngs:
        assert _png_size(png)[0] <= 1600, png
    assert MAX_WIDTH_IN * 150 == 1600


def test_no_qe_figure_without_a_biper_cell(tmp_path):
    store = tmp_path / "runs"
    write_cell(store, binarizer={"name": "recu"}, top1=87.0)
    write_cell(store, binarizer={"name": "xnor"}, top1=85.0)
    files = write_report([store], tmp_path / "out", counts=False)["files"]
    assert not any("qe_omega0" in p.name for p in files)
    assert any(p.name == "top1_cifar10.png" for p in files)


def test_sweep_keeps_cells_of_different_epochs_apart(tmp_path):
    store = tmp_path / "runs"
    for epochs in (4, 8):
        for omega0, top1 in ((10.0, 80.0), (20.0, 82.0), (30.0, 81.0)):
            write_cell(store / f"e{epochs}", binarizer={**BIPER, "omega0": omega0},
                       top1=top1 + epochs, epochs=epochs, stage_names=("sine", "binary"))
    runs = [RunStore(store)]
    cells = collect_cells(runs)
    kit = FigureKit(cells, leaderboard(cells, counts=False), collect_metrics(cells, runs))
    figures = dict(registry.get("biper").report_figures(kit))
    assert list(figures) == ["qe_omega0", "omega0_sweep_cifar10_resnet20_biper"]
    top1_axis = figures["omega0_sweep_cifar10_resnet20_biper"].axes[0]
    labels = [t.get_text() for t in top1_axis.get_legend().get_texts()]
    assert "mean ± sd over seeds (4 epochs)" in labels
    assert "mean ± sd over seeds (8 epochs)" in labels
    # each line holds the three ω0 of one budget only; beside them the published top-1
    lines = [pd.Series(l.get_ydata(), dtype=float) for l in top1_axis.get_lines()]
    drawn = {tuple(y.round(6)) for y in lines if len(y) > 1 and y.notna().all()}
    assert drawn == {(84.0, 86.0, 85.0), (88.0, 90.0, 89.0), (86.98, 86.98)}
