"""The driver's progress view, fed with Tune's per-epoch results by hand."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def trial(cid: str):
    return SimpleNamespace(config={"job": {"cell_id": cid}}, last_result={}, num_failures=0)


def make(tmp_path, every: float, lines: list):
    from bnnbench.schedule.progress import GridProgress

    return GridProgress(cells=3, finished=1, failed=0, planned={"a": 4, "b": 4},
                        done={"b": 1}, store=tmp_path, labels={}, echo=lines.append,
                        every=every, tty=False)


def test_eta_comes_from_measured_epoch_times_over_the_running_cells(tmp_path):
    lines: list[str] = []
    view = make(tmp_path, 0, lines)
    assert view.eta() is None                       # nothing measured yet
    view.on_trial_start(0, [], trial("a"))
    view.on_trial_start(0, [], trial("b"))
    view.on_trial_result(0, [], trial("a"), {"global_epoch": 0, "top1": 50.0, "seconds": 2.0})
    view.on_trial_result(0, [], trial("b"), {"global_epoch": 1, "top1": 60.0, "seconds": 4.0})
    # epochs left: a 4-1, b 4-2 = 5; median epoch 3 s; 2 cells at a time: 7.5 s
    assert view.eta() == pytest.approx(5 * 3.0 / 2)
    assert lines[-1] == ("progress: 1/3 finished | 2 running | 0 failed | ETA 7s | "
                         "a 1/4 top1 50.00; b 2/4 top1 60.00")


def test_a_log_gets_one_progress_line_per_period(tmp_path):
    lines: list[str] = []
    view = make(tmp_path, 3600, lines)
    view.on_trial_start(0, [], trial("a"))
    for epoch in range(3):
        view.on_trial_result(0, [], trial("a"), {"global_epoch": epoch, "top1": 1.0,
                                                 "seconds": 1.0})
    assert [line for line in lines if line.startswith("progress:")] == [
        "progress: 1/3 finished | 1 running | 0 failed | ETA 6s | a 1/4 top1 1.00"]
    assert lines[0].endswith("start a")


def test_a_cell_with_damaged_metrics_counts_no_epoch_instead_of_stopping_the_grid(tmp_path):
    """The driver repairs such a cell (train_cell rewrites its metrics from the checkpoint);
    its progress must not read the damaged file."""
    from grids import write_grid
    from runstores import write_grid_cell

    from bnnbench.experiment import grid as grids
    from bnnbench.schedule.driver import RayOptions, _progress
    from bnnbench.store import runstore
    from bnnbench.store.reader import RunStore

    grid = grids.load_grid(write_grid(tmp_path, '["xnor", "sign_ste"]', epochs=2))
    store = tmp_path / "store"
    damaged, intact = (write_grid_cell(store, cell, "partial") for cell in grid.cells)
    (damaged / runstore.METRICS).write_text('{"epoch": 0, "top1"')
    view = _progress(grid, grid.cells, RunStore(store), RayOptions(), finished=0, failed=0,
                     echo=[].append)
    assert view.done == {intact.name: 1}
    assert view.planned == {cell.id: 2 for cell in grid.cells}
