"""The run store's files: atomic writes, the mode collaborators need, damaged records named."""
import os
import stat
import subprocess
import sys

import pytest

from bnnbench.errors import BnnbenchError
from bnnbench.store import records, runstore
from bnnbench.store.reader import CellRecord


@pytest.mark.slow
def test_files_honour_the_umask_for_collaborators(tmp_path):
    # mkstemp alone would leave 0600: nobody else on shared storage could read the results
    script = ("import sys, torch; from bnnbench.store import runstore; d = sys.argv[1]; "
              "runstore.write_json(d + '/config.json', {}); "
              "runstore.save_checkpoint(d + '/checkpoint.pt', {'x': torch.zeros(1)})")
    for umask, mode in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        folder = tmp_path / f"u{umask:o}"
        folder.mkdir()
        subprocess.run([sys.executable, "-c", script, str(folder)], check=True,
                       preexec_fn=lambda: os.umask(umask))
        for name in ("config.json", "checkpoint.pt"):
            assert stat.S_IMODE((folder / name).stat().st_mode) == mode, (umask, name)


def test_save_checkpoint_keeps_the_previous_one(tmp_path):
    path = tmp_path / runstore.CHECKPOINT
    for epoch in range(3):
        runstore.save_checkpoint(path, {"epoch": epoch})
    assert runstore.load_checkpoint(path)["epoch"] == 2
    assert runstore.load_checkpoint(tmp_path / runstore.PREVIOUS)["epoch"] == 1
    path.unlink()                                    # a crash between the two renames
    state, note = runstore.load_latest_checkpoint(tmp_path)
    assert state["epoch"] == 1 and "is missing; resuming from checkpoint.prev.pt" in note
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp files


@pytest.mark.parametrize("text, problem", [
    ('{"status": "fini', "not valid JSON"),
    ("\udcff", "not valid JSON"),
    ("[1]", "a JSON list, not an object"),
])
def test_damage_names_the_file_and_what_is_wrong(tmp_path, text, problem):
    records.write_config(tmp_path, {"cell": {}})
    (tmp_path / runstore.RESULT).write_bytes(text.encode("utf-8", "surrogateescape"))
    record = CellRecord(tmp_path)
    message = record.damage
    assert message.startswith(f"{tmp_path / runstore.RESULT} is damaged") and problem in message
    assert record.status == "damaged" and record.reason == message


def test_a_garbage_metrics_line_is_named_with_its_number(tmp_path):
    records.write_metrics(tmp_path, [{"epoch": 0}, {"epoch": 1}])
    with open(tmp_path / runstore.METRICS, "a") as fh:
        fh.write("garbage\n")
    with pytest.raises(BnnbenchError, match=rf"{tmp_path / runstore.METRICS}:3 is damaged"):
        runstore.read_metrics(tmp_path / runstore.METRICS)


@pytest.mark.slow
def test_a_cell_being_trained_is_refused_to_a_second_process(tmp_path):
    out = tmp_path / "cell"
    argv = [sys.executable, "-m", "bnnbench", "train", "--dataset", "digits", "--arch",
            "resnet20", "--binarizer", "xnor", "--epochs", "1", "--subset", "64", "--device",
            "cpu", "--out", str(out)]
    with runstore.cell_lock(out):     # as a trial orphaned by a killed driver would hold it
        busy = subprocess.run(argv, capture_output=True, text=True)
        assert busy.returncode == 2 and "Traceback" not in busy.stderr
        assert busy.stderr.strip().splitlines() == [
            f"bnnbench: error: {out} is being trained by another process; wait for it to end "
            "or stop it, then rerun"]
        assert sorted(p.name for p in out.iterdir()) == [".lock"]   # nothing written
    done = subprocess.run(argv, capture_output=True, text=True)      # the lock is gone
    assert done.returncode == 0, done.stderr
    assert CellRecord(out).status == "finished"


def test_partial_writes_of_a_killed_process_are_removed_on_resume(tmp_path):
    from bnnbench.engine.train import train_cell
    from bnnbench.experiment.cell import CellConfig

    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", epochs=1,
                     subset=64, device="cpu")
    debris = [tmp_path / ".checkpoint.pt.iimxnane", tmp_path / ".metrics.jsonl.h3rjc9w9"]
    for path in debris:            # what a SIGKILL in the middle of an atomic write leaves
        path.write_bytes(b"\0" * 100)
    keep = tmp_path / ".my-notes"
    keep.write_text("not ours")
    train_cell(cfg, tmp_path, progress=False)
    assert not any(p.exists() for p in debris) and keep.exists()
