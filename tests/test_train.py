"""One cell end to end on the CPU: learning, records, stages, resume, bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bnnbench import registry, runstore
from bnnbench.cell import CellConfig
from bnnbench.errors import BnnbenchError
from bnnbench.train import TrainingDiverged, _CellRun, train_cell

# Keys of a metrics row that depend on the clock, not on the computation.
TIMING = ("seconds", "images_per_s")


def _numbers(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.parametrize("binarizer", registry.list_binarizers())
def test_one_epoch_on_cifar10_subset_beats_chance(binarizer, cifar10_root, tmp_path):
    # 2,000 images at the official batch of 256 are only 8 steps: take 63 small Adam steps
    recipe = {"optimizer": "adam", "lr": 0.005, "batch_size": 32, "weight_decay": 0.0}
    cfg = CellConfig(dataset="cifar10", arch="resnet20", binarizer=binarizer, epochs=1,
                     subset=2000, data_dir=str(cifar10_root), recipe=recipe, device="cpu")
    result = train_cell(cfg, tmp_path, progress=False)
    assert result["status"] == "finished"
    # 10,000 test images: chance is 10% ± 0.3% (one std), so 13% is far outside it
    assert result["top1"] > 13.0
    rows = runstore.read_metrics(tmp_path / runstore.METRICS)
    assert [r["stage"] for r in rows] == list(registry.get(binarizer).stages)
    config = runstore.read_json(tmp_path / runstore.CONFIG)
    assert config["cell_id"] == cfg.cell_id()
    assert config["model"]["params"] == result["params"]
    assert config["env"]["torch"] == torch.__version__
    assert (tmp_path / runstore.CHECKPOINT).exists()


def test_biper_records_qe_of_its_layers(tmp_path):
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="biper", epochs=1, device="cpu")
    result = train_cell(cfg, tmp_path, progress=False)
    assert 0.0 < result["qe"] < 0.103        # below the closed form's maximum
    checkpoint = runstore.load_checkpoint(tmp_path / runstore.CHECKPOINT)
    assert checkpoint["cell"]["binarizer"]["omega0"] == 20.0   # ω0 travels with the weights
    assert result["b"] > 0


def _run_cli(out, *extra):
    return [sys.executable, "-m", "bnnbench", "train", "--dataset", "digits", "--arch",
            "resnet20", "--binarizer", "biper", "--epochs", "2", "--subset", "600",
            "--device", "cpu", "--out", str(out), *extra]


def test_killed_cell_resumes_to_the_same_numbers(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = tmp_path / "straight"
    subprocess.run(_run_cli(straight), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_run_cli(killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    metrics = killed / runstore.METRICS
    # kill it inside stage 2's first epoch: resume must restore the stage-1 weights too
    deadline = time.time() + 120
    while len(runstore.read_metrics(metrics)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(runstore.read_metrics(metrics))
    assert 2 <= done < 4 and not (killed / runstore.RESULT).exists()

    subprocess.run(_run_cli(killed), check=True, env=env, capture_output=True)
    a = runstore.read_metrics(straight / runstore.METRICS)
    b = runstore.read_metrics(killed / runstore.METRICS)
    assert len(a) == len(b) == 4
    assert _numbers(a) == _numbers(b)
    ra, rb = (runstore.read_json(d / runstore.RESULT) for d in (straight, killed))
    assert (ra["top1"], ra["top5"], ra["best_top1"]) == (rb["top1"], rb["top5"], rb["best_top1"])


def test_stage_two_starts_from_every_tensor_of_stage_one(tmp_path, monkeypatch):
    seen = {}
    epoch, enter = _CellRun._epoch, _CellRun._enter_stage

    def spy_epoch(self, stage_index, ep, optimizer):
        row = epoch(self, stage_index, ep, optimizer)
        if stage_index == 0 and ep + 1 == self.stages[0][1]["epochs"]:
            seen["end_of_1"] = {k: v.clone() for k, v in self.model.state_dict().items()}
        return row

    def spy_enter(self, index):
        enter(self, index)
        if index == 1:
            seen["start_of_2"] = {k: v.clone() for k, v in self.model.state_dict().items()}

    monkeypatch.setattr(_CellRun, "_epoch", spy_epoch)
    monkeypatch.setattr(_CellRun, "_enter_stage", spy_enter)
    for name in ("biper", "reactnet"):
        cfg = CellConfig(dataset="digits", arch="resnet20", binarizer=name, epochs=1,
                         device="cpu")
        train_cell(cfg, tmp_path / name, progress=False)
        end, start = seen.pop("end_of_1"), seen.pop("start_of_2")
        assert end.keys() == start.keys()
        assert any(k.endswith("binarizer.alpha") or k.endswith("binarizer.theta") for k in end)
        for key in end:
            assert torch.equal(end[key], start[key]), key


def test_finished_cell_is_not_trained_again(tmp_path):
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", epochs=1,
                     subset=200, device="cpu")
    first = train_cell(cfg, tmp_path, progress=False)
    stamp = (tmp_path / runstore.RESULT).stat().st_mtime_ns
    assert train_cell(cfg, tmp_path, progress=False) == first
    assert (tmp_path / runstore.RESULT).stat().st_mtime_ns == stamp


def test_refuses_to_resume_another_config(tmp_path):
    train_cell(CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", epochs=1,
                          subset=200, device="cpu"), tmp_path, progress=False)
    (tmp_path / runstore.RESULT).unlink()   # as if interrupted
    other = CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", epochs=1,
                       subset=200, seed=1, device="cpu")
    with pytest.raises(BnnbenchError, match=r"another config \(differs in: seed\)"):
        train_cell(other, tmp_path, progress=False)


def test_nan_loss_stops_the_cell_and_keeps_its_record(tmp_path):
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="sign_ste", epochs=3,
                     subset=300, device="cpu", recipe={"optimizer": "sgd", "lr": 1e38, "weight_decay": 0.0})
    with pytest.raises(TrainingDiverged, match="loss became"):
        train_cell(cfg, tmp_path, progress=False)
    result = runstore.read_json(tmp_path / runstore.RESULT)
    assert result["status"] == "failed" and "TrainingDiverged" in result["error"]
    assert runstore.read_json(tmp_path / runstore.CONFIG)["cell"]["recipe"]["lr"] == 1e38


def test_cli_train_reports_result_and_user_errors(tmp_path):
    out = tmp_path / "cell"
    done = subprocess.run(_run_cli(out, "--param", "omega0=10"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "finished: top-1" in done.stdout
    config = json.loads((out / runstore.CONFIG).read_text())
    assert config["cell"]["binarizer"]["omega0"] == 10.0

    bad = subprocess.run(_run_cli(tmp_path / "x", "--param", "omega=10"), capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "no parameter 'omega'" in bad.stderr
