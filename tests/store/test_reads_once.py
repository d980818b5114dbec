"""Each record of a run folder is parsed once per command (store.reader): counted where any code
would open config.json, result.json or metrics.jsonl, for `run --dry-run`, for `run` of a grid
whose cells have all finished, and for `report` of a store with every kind of cell."""
from __future__ import annotations

import builtins
import collections
import io
import json
from pathlib import Path

import pytest
from cli_run import run_main
from grids import write_grid
from runstores import write_grid_cell

from bnnbench.experiment import grid as grids
from bnnbench.store import records, runstore

RECORDS = (runstore.CONFIG, runstore.RESULT, runstore.METRICS)
GRID = '["xnor", "sign_ste", "reactnet", "bireal"]'   # seeds 0, 1; reactnet adds an fp teacher


@pytest.fixture
def opened(monkeypatch) -> collections.Counter:
    """How often each record file is opened for reading, by Path.read_text or open alike."""
    count: collections.Counter = collections.Counter()

    def counting(open_):
        def opener(file, mode="r", *args, **kwargs):
            if Path(str(file)).name in RECORDS and not set(mode) & set("wax+"):
                count[str(file)] += 1
            return open_(file, mode, *args, **kwargs)
        return opener

    monkeypatch.setattr(io, "open", counting(io.open))   # pathlib opens through io.open
    monkeypatch.setattr(builtins, "open", counting(builtins.open))
    return count


def record_files(store: Path) -> set[str]:
    return {str(p) for name in RECORDS for p in store.rglob(name)}


def every_kind_of_cell(tmp_path: Path) -> tuple[grids.Grid, Path, Path]:
    """A grid's store with a finished teacher and students, a failed, a partial, a damaged, a
    stale (trained under an older recipe: config.json names another id) and two new cells;
    and the damaged cell's result.json."""
    grid = grids.load_grid(write_grid(tmp_path, GRID, seeds=2))
    cells = {(c.config.binarizer["name"], c.config.seed): c for c in grid.cells}
    store = tmp_path / "store"
    for key, status in ((("fp", 0), "finished"), (("xnor", 0), "finished"),
                        (("xnor", 1), "failed"), (("sign_ste", 0), "partial"),
                        (("sign_ste", 1), "finished"), (("reactnet", 0), "finished"),
                        (("reactnet", 1), "new"), (("bireal", 0), "finished")):
        write_grid_cell(store, cells[key], status, top1=40.0 + len(key[0]))
    torn = store / cells["sign_ste", 1].id / runstore.RESULT
    torn.write_text(torn.read_text()[:20])
    stale = store / cells["bireal", 0].id
    config = json.loads((stale / runstore.CONFIG).read_text())
    config["cell_id"] = config["cell_id"][:-10] + "0123456789"
    records.write_config(stale, config)
    stale.rename(store / config["cell_id"])
    return grid, store, torn


def test_run_dry_run_parses_each_record_at_most_once(tmp_path, capsys, opened):
    grid, store, _ = every_kind_of_cell(tmp_path)
    opened.clear()
    code, out, err = run_main(capsys, "run", "--grid", str(grid.path), "--out", str(store),
                              "--dry-run")
    assert code == 0, err
    for status in ("finished", "failed", "partial", "damaged", "new"):
        assert f" {status} " in out, status
    assert "were trained with a recipe or binarizer code that differs" in out   # the stale one
    assert max(opened.values()) == 1, opened.most_common(3)
    # every grid cell's records and the other folders' config.json: each read
    configs = {str(p) for p in store.rglob(runstore.CONFIG)}
    assert configs <= set(opened) <= record_files(store)


def test_run_of_a_finished_grid_parses_each_record_once_and_starts_no_ray(
        tmp_path, capsys, opened, monkeypatch):
    from bnnbench.schedule import cluster

    grid = grids.load_grid(write_grid(tmp_path, GRID))
    store = tmp_path / "store"
    for cell in grid.cells:
        write_grid_cell(store, cell, "finished")
    monkeypatch.setattr(cluster, "connect", lambda address: pytest.fail("Ray was started"))
    opened.clear()
    code, out, err = run_main(capsys, "run", "--grid", str(grid.path), "--out", str(store))
    assert code == 0, err
    assert f"{len(grid.cells)} finished, 0 failed" in out and "0 to run" in out
    assert opened == {path: 1 for path in record_files(store)}


def test_report_parses_each_record_once(tmp_path, capsys, opened):
    _, store, torn = every_kind_of_cell(tmp_path)
    opened.clear()
    code, out, err = run_main(capsys, "report", str(store), "--out", str(tmp_path / "report"),
                              "--no-counts")
    assert code == 0, err
    assert f"{torn} is damaged" in out and "Left out: 1 stale run folder(s)" in out
    assert (tmp_path / "report" / "figures").is_dir()          # the curves read the metrics too
    # every record once, but the metrics beside a damaged result.json: the damage is named
    unread = str(torn.with_name(runstore.METRICS))
    assert opened == {path: 1 for path in record_files(store) - {unread}}
