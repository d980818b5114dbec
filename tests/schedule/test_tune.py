"""Grids through Ray Tune into the run store: complete records, failures, kill and resume.

Ray starts slowly, so the in-process tests share one local Ray session; only the kill test
starts the command in a subprocess (its own Ray) and kills that driver with SIGKILL.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from grids import snapshot, write_grid

from bnnbench.cli import main as cli
from bnnbench.experiment import grid as grids
from bnnbench.schedule import cluster
from bnnbench.schedule import driver as tuning
from bnnbench.schedule import status
from bnnbench.store import runstore
from bnnbench.store.reader import CellRecord, RunStore

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def ray_session():
    cluster.quiet_ray_env()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()






def test_small_grid_runs_to_complete_records(ray_session, tmp_path, capsys):
    path = write_grid(tmp_path, '["sign_ste", "xnor"]', seeds=2)
    grid = grids.load_grid(path)
    store = tmp_path / "store"
    table = tuning.run_grid(grid, store, max_concurrent=2, echo=print)
    assert list(table["status"]) == ["finished"] * 4
    folders = sorted(p for p in store.iterdir() if p.is_dir())
    assert [p.name for p in folders] == sorted(c.id for c in grid.cells)  # no .ray left
    for folder in folders:
        config = runstore.read_json(folder / runstore.CONFIG)
        assert config["cell_id"] == folder.name and config["cell"]["device"] == "cpu"
        result = runstore.read_json(folder / runstore.RESULT)
        assert result["status"] == "finished" and 0 <= result["top1"] <= 100
        assert [r["global_epoch"] for r in runstore.read_metrics(folder / runstore.METRICS)] == [0]
    out = capsys.readouterr().out
    assert "[4/4 finished | 0 running | 0 failed | best top1" in out

    # a cluster without GPUs: a GPU request becomes 0 with a note, nothing waits for a GPU
    notes = []
    assert cluster.resources(None, 0.5, False, notes.append) == (1.0, 0.0)
    assert "no GPU" in notes[0]

    # rerun: nothing to do, nothing touched
    before = {f.name: snapshot(f) for f in folders}
    tuning.run_grid(grid, store, echo=print)
    assert "0 to run" in capsys.readouterr().out
    assert {f.name: snapshot(f) for f in folders} == before

    # the report on this real run store: one row per binarizer, means of its two seeds
    from bnnbench.report import leaderboard as report

    made = report.write_report([store], tmp_path / "report")
    board = made["leaderboard"].set_index("binarizer")
    for name in ("sign_ste", "xnor"):
        top1 = [runstore.read_json(f / runstore.RESULT)["top1"] for f in folders
                if runstore.read_json(f / runstore.CONFIG)["cell"]["binarizer"]["name"] == name]
        assert board.loc[name, "n_seeds"] == 2
        assert board.loc[name, "top1_mean"] == pytest.approx(sum(top1) / 2)
        assert board.loc[name, "params"] > 0
    assert all(f.stat().st_size > 0 for f in made["files"])
    assert "sign_ste" in made["markdown"] and "xnor" in made["markdown"]

    # --dry-run lists every cell with its status, without training
    cli.main(["run", "--grid", str(path), "--out", str(store), "--dry-run"])
    out = capsys.readouterr().out
    assert out.count(" finished ") == 4 and "4 finished" in out
    assert all(c.id in out for c in grid.cells)
    assert "xnor" in out and "sign_ste" in out


BOOM = '''
from bnnbench import Binarizer, register, sign_clipped_ste


@register("boom")
class Boom(Binarizer):
    """A binarizer whose weight() raises: its cell must fail alone."""

    def weight(self, w):
        raise RuntimeError("boom: this weight function always fails")

    def activation(self, x):
        return sign_clipped_ste(x)
'''


def test_failing_cell_is_recorded_and_others_finish(ray_session, tmp_path, capsys):
    plugin = tmp_path / "boom_plugin.py"
    plugin.write_text(BOOM)
    path = write_grid(tmp_path, '["boom", "sign_ste"]', extra='plugins = ["boom_plugin.py"]\n')
    grid = grids.load_grid(path)
    assert grid.cells[0].config.plugins == [str(plugin.resolve())]
    store = tmp_path / "store"
    table = tuning.run_grid(grid, store, echo=print)
    status = dict(zip(table["binarizer"], table["status"]))
    assert status == {"boom": "failed", "sign_ste": "finished"}
    boom = store / grid.cells[0].id
    result = runstore.read_json(boom / runstore.RESULT)
    assert result["status"] == "failed" and "this weight function always fails" in result["error"]
    assert "RuntimeError" in (boom / runstore.ERROR_LOG).read_text()
    assert "FAILED " + grid.cells[0].id in capsys.readouterr().out

    # a rerun keeps the failed cell (no --retry-failed) and the CLI exits 1 for it
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--grid", str(path), "--out", str(store)])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "0 to run" in out and "1 failed" in out
    assert runstore.read_json(boom / runstore.RESULT) == result
    cli.main(["run", "--grid", str(path), "--out", str(store), "--dry-run"])
    assert "failed" in capsys.readouterr().out
    # --retry-failed forgets the failure (the record, not the checkpoint) before running again
    tuning._forget_failure(CellRecord(boom))
    assert CellRecord(boom).status in ("new", "partial") and (boom / runstore.CONFIG).exists()


def test_killed_driver_resumes_every_cell_once(ray_session, tmp_path, capsys):
    path = write_grid(tmp_path, '["sign_ste", "xnor", "bireal"]', epochs=2, subset=128)
    grid = grids.load_grid(path)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "bnnbench", "run", "--grid", str(path), "--out", str(store),
               "--max-concurrent", "1"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.time() + 120
        while not list(store.glob("*/result.json")):
            assert driver.poll() is None and time.time() < deadline, "no cell finished"
            time.sleep(0.2)
    finally:   # the driver, then Ray's processes of its session (workers have own groups)
        from processes import kill_session
        kill_session(driver)
    done = {p.parent.name: snapshot(p.parent) for p in store.glob("*/result.json")}
    assert 1 <= len(done) < 3

    cli.main(["run", "--grid", str(path), "--out", str(store)])   # the same command, again
    assert f"{len(done)} finished" in capsys.readouterr().out
    folders = sorted(p for p in store.iterdir() if p.is_dir())
    assert [p.name for p in folders] == sorted(c.id for c in grid.cells)
    for folder in folders:
        assert runstore.read_json(folder / runstore.RESULT)["status"] == "finished"
        rows = runstore.read_metrics(folder / runstore.METRICS)
        assert [r["global_epoch"] for r in rows] == [0, 1]   # each epoch recorded once
    for name, files in done.items():
        assert snapshot(store / name) == files                 # finished cells untouched


def test_a_cell_whose_recipe_changed_is_new_and_names_the_stale_folder(tmp_path, monkeypatch):
    from bnnbench.api import registry
    from bnnbench.engine.train import train_cell

    grid = grids.load_grid(write_grid(tmp_path, '["irnet", "xnor"]'))
    store = tmp_path / "store"
    for cell in grid.cells:
        train_cell(cell, store / cell.id, progress=False)
    old = [c.id for c in grid.cells]
    # IR-Net's official recipe for this dataset changes after the cells were trained
    monkeypatch.setitem(registry.get("irnet").recipes, "digits",
                        {"binary": {"binarizer": {"t_min": 0.01}}})
    grid = grids.load_grid(grid.path)                  # the next command resolves anew
    runs = RunStore(store)
    table = status.cell_table(grid, runs)
    irnet, xnor = table.iloc[0], table.iloc[1]
    assert irnet["cell"] != old[0] and irnet["status"] == "new" and irnet["replaces"] == old[0]
    assert xnor["cell"] == old[1] and xnor["status"] == "finished" and xnor["replaces"] == ""
    assert old[0] in status.stale_line(runs) and old[1] not in status.stale_line(runs)
    assert "replaces" in status.format_table(table)


def test_dry_run_names_unreadable_cells_without_a_traceback(tmp_path):
    from bnnbench.engine.train import train_cell

    path = write_grid(tmp_path, '["xnor", "bireal"]')
    grid = grids.load_grid(path)
    store = tmp_path / "store"
    for cell in grid.cells:
        train_cell(cell, store / cell.id, progress=False)
    torn = store / grid.cells[0].id / runstore.RESULT
    torn.write_text("{")
    lost = store / grid.cells[1].id / runstore.CONFIG
    lost.write_text("[1, 2]")
    torn_config = store / "copied-elsewhere" / runstore.CONFIG   # a folder of no grid cell
    torn_config.parent.mkdir()
    torn_config.write_text('{"cell": {"data')
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    done = subprocess.run([sys.executable, "-m", "bnnbench", "run", "--grid", str(path), "--out",
                           str(store), "--dry-run"], capture_output=True, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "2 damaged" in done.stdout
    assert f"{torn} is damaged (not valid JSON" in done.stdout
    assert f"{lost} is damaged (a JSON list, not an object)" in done.stdout
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


PLUGIN = '''
from bnnbench import Binarizer, register, sign_clipped_ste


@register("edited_sign")
class EditedSign(Binarizer):
    """sign with a clipped STE (a plugin that its author edits after a grid ran)."""

    def weight(self, w):
        return sign_clipped_ste(w)

    def activation(self, x):
        return sign_clipped_ste(x)
'''


def test_an_edited_plugin_makes_its_cells_stale_until_rerun(ray_session, tmp_path, capsys):
    plugin = tmp_path / "edited_sign.py"
    plugin.write_text(PLUGIN)
    path = write_grid(tmp_path, '["edited_sign", "xnor"]',
                      extra=f'plugins = ["{plugin.name}"]\n')
    grid = grids.load_grid(path)
    store = tmp_path / "store"
    tuning.run_grid(grid, store, echo=print)
    edited, xnor = (c.id for c in grid.cells)
    before = snapshot(store / edited)

    plugin.write_text(PLUGIN.replace("a plugin that", "a plugin file that"))   # a real edit
    table = status.cell_table(grid, RunStore(store))
    assert list(table["status"]) == ["stale", "finished"]
    from bnnbench.report import leaderboard as report
    board = report.write_report([store], tmp_path / "report", figures=False)["leaderboard"]
    assert list(board["binarizer"]) == ["xnor"]                # never a silent reuse
    with pytest.raises(SystemExit) as exit_code:               # plain run: kept, exit 1
        cli.main(["run", "--grid", str(path), "--out", str(store)])
    assert exit_code.value.code == 1
    assert "--rerun-stale trains them again" in capsys.readouterr().out
    assert snapshot(store / edited) == before

    table = tuning.run_grid(grid, store, rerun_stale=True, echo=print)
    assert list(table["status"]) == ["finished", "finished"]
    kept = [p for p in store.iterdir() if p.name.startswith(f"{edited}.stale-")]
    assert len(kept) == 1 and snapshot(kept[0]) == before     # the old record is kept aside
    cells = report.collect_cells([store])
    assert list(cells.loc[cells.path == str(kept[0]), "status"]) == ["stale"]


def test_train_log_tensorboard_writes_one_scalar_per_epoch(ray_session, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "cell"
    cli.main(["train", "--dataset", "digits", "--arch", "resnet20", "--binarizer", "irnet",
              "--epochs", "2", "--subset", "64", "--log", "tensorboard", "--out", str(out)])
    rows = runstore.read_metrics(out / runstore.METRICS)
    assert runstore.read_json(out / runstore.RESULT)["status"] == "finished"
    (run,) = {p.parent for p in (out / "tensorboard").rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(run)).Reload()
    for key in ("top1", "binarizer/t"):          # the engine's and the binarizer's own
        scalars = events.Scalars(f"ray/tune/{key}")
        assert [s.step for s in scalars] == [1, 2]
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in rows])
