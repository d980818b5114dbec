"""The one reader of a run folder (CellRecord, RunStore) and the one writer of each record
(store.records): a cell's status and its reason decided from the records the writers leave."""
from __future__ import annotations

import json

import pytest
from runstores import write_grid_cell

from bnnbench.engine.train import TrainingDiverged
from bnnbench.errors import BnnbenchError
from bnnbench.experiment.cell import CellConfig
from bnnbench.experiment.resolve import resolve
from bnnbench.store import records, runstore
from bnnbench.store.reader import CellRecord, RunStore

XNOR = CellConfig("digits", "resnet20", "xnor", epochs=2, subset=32)


@pytest.fixture
def cell():
    return resolve(XNOR)


@pytest.mark.parametrize("status", ["finished", "failed", "partial", "new"])
def test_the_status_is_what_the_writers_recorded(tmp_path, cell, status):
    record = CellRecord(write_grid_cell(tmp_path, cell, status))
    assert (record.status, record.progress, record.reason) == (status, status, None)
    assert record.config["cell_id"] == cell.id and record.stale_reason is None


def test_no_folder_is_a_new_cell(tmp_path, cell):
    record = RunStore(tmp_path / "nowhere")[cell.id]
    assert (record.status, record.config, record.result, record.metrics) == ("new", {}, {}, [])
    assert RunStore(tmp_path / "nowhere").folders() == []


def test_a_damaged_record_is_named_and_wins_over_everything(tmp_path, cell):
    folder = write_grid_cell(tmp_path, cell, "finished")
    with open(folder / runstore.METRICS, "a") as fh:
        fh.write("garbage\n")
    record = CellRecord(folder)
    assert record.status == record.progress == "damaged"
    assert record.reason == record.damage and record.damage.startswith(
        f"{folder / runstore.METRICS}:3 is damaged (not a JSON line")
    assert record.config_readable and record.result["status"] == "finished"
    with pytest.raises(BnnbenchError, match="is damaged"):
        record.metrics


def test_stale_records_say_why(tmp_path, cell):
    folder = write_grid_cell(tmp_path, cell, "finished")
    config = CellRecord(folder).config
    records.write_config(folder, {**config, "cell_id": cell.id[:-1] + "x"})
    assert (CellRecord(folder).status, CellRecord(folder).reason) == ("stale", "recipe")
    code = {**config["code"], "sha256": "0" * 64}    # the binarizer's file changed since
    records.write_config(folder, {**config, "code": code})
    stale = CellRecord(folder)
    assert (stale.status, stale.reason, stale.progress) == ("stale", "code", "finished")


def test_a_record_keeps_what_it_read_until_refreshed(tmp_path, cell):
    folder = write_grid_cell(tmp_path, cell, "partial")
    record = CellRecord(folder)
    assert record.status == "partial" and len(record.metrics) == 1
    write_grid_cell(tmp_path, cell, "finished")                    # trained on meanwhile
    assert record.status == "partial" and len(record.metrics) == 1
    fresh = record.refresh()
    assert fresh.status == "finished" and len(fresh.metrics) == cell.planned_epochs
    assert fresh.metrics_frame()["global_epoch"].tolist() == list(range(cell.planned_epochs))


def test_a_store_lists_its_cell_folders_recursively_and_keeps_one_record_each(tmp_path, cell):
    inner = write_grid_cell(tmp_path / "grid-a", cell, "finished")
    outer = write_grid_cell(tmp_path, cell, "new")
    (tmp_path / "not-a-cell").mkdir()
    runs = RunStore(tmp_path)
    assert runs.folders() == sorted([inner, outer])
    assert [r.path for r in runs] == runs.folders() and runs[cell.id] is runs[cell.id]
    before = runs[cell.id]
    runs.refresh([cell.id])
    kept = {r.path: r for r in runs}
    assert runs[cell.id] is not before and kept[inner] is runs.at(inner)


def test_the_result_written_is_the_summary_of_the_epochs(tmp_path, cell):
    folder = write_grid_cell(tmp_path, cell, "finished")
    rows, result = CellRecord(folder).metrics, CellRecord(folder).result
    assert result["top1"] == rows[-1]["top1"] and result["epochs"] == len(rows)
    assert result["best_top1"] == max(r["top1"] for r in rows)
    assert result["steps"] == sum(r["steps"] for r in rows)
    assert result["seconds"] == pytest.approx(sum(r["seconds"] for r in rows))


def test_a_failure_counts_the_epochs_it_kept_and_names_the_cell(tmp_path, cell):
    try:
        raise TrainingDiverged("the loss became nan")
    except TrainingDiverged as exc:
        records.write_failure(tmp_path, cell.config.to_dict(), cell.id, exc)
    record = CellRecord(tmp_path)
    assert record.config == {"cell": cell.config.to_dict(), "cell_id": cell.id}   # minimal
    assert record.result == {"status": "failed", "epochs": 0,
                             "error": "TrainingDiverged: the loss became nan"}
    assert "raise TrainingDiverged" in (tmp_path / runstore.ERROR_LOG).read_text()
    records.write_metrics(tmp_path, [{"epoch": 0}, {"epoch": 1}])
    records.write_failure(tmp_path, {}, "ignored: config.json is kept", ValueError("again"))
    assert CellRecord(tmp_path).result["epochs"] == 2
    assert CellRecord(tmp_path).config["cell_id"] == cell.id


def test_records_of_an_older_bnnbench_read_as_todays(tmp_path, cell):
    folder = write_grid_cell(tmp_path, cell, "finished")
    for name in (runstore.RESULT, runstore.METRICS):    # as written before binarizer/<key>
        lines = (folder / name).read_text().splitlines() if name == runstore.METRICS else [
            (folder / name).read_text()]
        old = [json.dumps({**json.loads(line), "qe": None, "b": 0.5}) for line in lines]
        (folder / name).write_text("\n".join(old) + "\n")
    record = CellRecord(folder)
    assert record.result["binarizer/b"] == 0.5 and "b" not in record.result
    assert all(row["binarizer/b"] == 0.5 and "qe" not in row for row in record.metrics)
