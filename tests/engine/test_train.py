"""One cell end to end on the CPU: learning, records, stages, resume, bad input."""
import copy
import json
import math
import operator
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bnnbench.api import registry
from bnnbench.api.layers import binary_layers
from bnnbench.engine.evaluate import load_run
from bnnbench.engine.train import TrainingDiverged, _CellRun, train_cell
from bnnbench.errors import BnnbenchError
from bnnbench.experiment.cell import CellConfig
from bnnbench.experiment.recipe import lr_at, stage_recipes
from bnnbench.experiment.resolve import resolve
from bnnbench.store import records, runstore
from bnnbench.store.reader import CellRecord

# Keys of a metrics row that depend on the clock, not on the computation.
TIMING = ("seconds", "images_per_s")


def _numbers(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.slow
@pytest.mark.parametrize("binarizer", registry.list_binarizers())
def test_one_epoch_on_cifar10_subset_beats_chance(binarizer, cifar10_root, tmp_path):
    # 2,000 images at the official batch of 256 are only 8 steps: take 63 small Adam steps;
    # on the labels, without a teacher (distillation: tests/test_teachers.py)
    recipe = {"optimizer": "adam", "lr": 0.005, "batch_size": 32, "weight_decay": 0.0,
              "distill": "none"}
    cfg = CellConfig(dataset="cifar10", arch="resnet20", binarizer=binarizer, epochs=1,
                     subset=2000, data_dir=str(cifar10_root), recipe=recipe, device="cpu")
    result = train_cell(cfg, tmp_path, progress=False)
    assert result["status"] == "finished"
    # 10,000 test images: chance is 10% ± 0.3% (one std), so 13% is far outside it
    assert result["top1"] > 13.0
    rows = runstore.read_metrics(tmp_path / runstore.METRICS)
    assert [r["stage"] for r in rows] == list(registry.get(binarizer).stages)
    config = runstore.read_json(tmp_path / runstore.CONFIG)
    assert config["cell_id"] == resolve(cfg).id
    assert config["model"]["params"] == result["params"]
    assert config["env"]["torch"] == torch.__version__
    assert (tmp_path / runstore.CHECKPOINT).exists()


def test_biper_records_qe_and_b_of_its_layers(tmp_path):
    """BiPer's metrics, as binarizer/qe and binarizer/b in every row and in result.json: the
    layers' mean empirical QE and mean|W|, counted here from the final weights."""
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="biper", epochs=1, device="cpu")
    result = train_cell(cfg, tmp_path, progress=False)
    checkpoint = runstore.load_checkpoint(tmp_path / runstore.CHECKPOINT)
    assert checkpoint["binarizer"] == {"name": "biper", "omega0": 20.0,  # ω0 travels with
                                       "reg_tau": 0.037}                # the weights
    weights = [layer.weight.detach().double() for layer in binary_layers(load_run(tmp_path))]
    sines = [torch.sin(20.0 * w) for w in weights]
    qe = [(s.pow(2).mean() - s.abs().mean().pow(2)).item() for s in sines]
    assert 0.0 < result["binarizer/qe"] < 0.103        # below the closed form's maximum
    assert result["binarizer/qe"] == pytest.approx(sum(qe) / len(qe), rel=1e-9)
    assert result["binarizer/b"] == pytest.approx(
        sum(w.abs().mean().item() for w in weights) / len(weights), rel=1e-6)
    rows = runstore.read_metrics(tmp_path / runstore.METRICS)
    assert [sorted(k for k in row if k.startswith("binarizer/")) for row in rows] == \
        [["binarizer/b", "binarizer/qe"]] * 2                       # one row per stage
    assert {k: rows[-1][k] for k in ("binarizer/b", "binarizer/qe")} == \
        {k: result[k] for k in ("binarizer/b", "binarizer/qe")}
    assert not {"qe", "b"} & set(rows[0]) and not {"qe", "b"} & set(result)


def _run_cli(out, *extra):
    return [sys.executable, "-m", "bnnbench", "train", "--dataset", "digits", "--arch",
            "resnet20", "--binarizer", "biper", "--epochs", "2", "--subset", "600",
            "--device", "cpu", "--out", str(out), *extra]


@pytest.mark.slow
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


@pytest.mark.slow
def test_stage_two_starts_from_every_tensor_of_stage_one(tmp_path, monkeypatch):
    seen = {}
    epoch, enter = _CellRun._epoch, _CellRun._enter_stage

    def spy_epoch(self, stage_index, ep, optimizer):
        row = epoch(self, stage_index, ep, optimizer)
        if stage_index == 0 and ep + 1 == self.stages[0][1]["epochs"]:
            seen["end_of_1"] = copy.deepcopy(self.model.state_dict())
        return row

    def spy_enter(self, index):
        enter(self, index)
        if index == 1:
            seen["start_of_2"] = copy.deepcopy(self.model.state_dict())

    monkeypatch.setattr(_CellRun, "_epoch", spy_epoch)
    monkeypatch.setattr(_CellRun, "_enter_stage", spy_enter)
    for name in ("biper", "reactnet"):
        cfg = CellConfig(dataset="digits", arch="resnet20", binarizer=name, epochs=1,
                         device="cpu", recipe={"distill": "none"})   # no teacher needed
        train_cell(cfg, tmp_path / name, progress=False)
        end, start = seen.pop("end_of_1"), seen.pop("start_of_2")
        assert end.keys() == start.keys()
        assert any(k.endswith("binarizer.alpha") or k.endswith("binarizer.theta") for k in end)
        for key in end:   # tensors, and each binarizer's extra state (its stage)
            same = torch.equal if isinstance(end[key], torch.Tensor) else operator.eq
            assert same(end[key], start[key]), key


def test_finished_cell_is_not_trained_again(tmp_path):
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", epochs=1,
                     subset=200, device="cpu")
    first = train_cell(cfg, tmp_path, progress=False)
    stamp = (tmp_path / runstore.RESULT).stat().st_mtime_ns
    assert train_cell(cfg, tmp_path, progress=False) == first
    assert (tmp_path / runstore.RESULT).stat().st_mtime_ns == stamp
    # a record of an older bnnbench, before the cell had total_epochs, is the same cell
    config = runstore.read_json(tmp_path / runstore.CONFIG)
    del config["cell"]["total_epochs"]
    records.write_config(tmp_path, config)
    assert train_cell(cfg, tmp_path, progress=False) == first


def test_total_epochs_split_over_stages_and_steps_counted(tmp_path):
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="biper", total_epochs=3,
                     subset=70, recipe={"batch_size": 32}, device="cpu")
    result = train_cell(cfg, tmp_path, progress=False)
    rows = runstore.read_metrics(tmp_path / runstore.METRICS)
    assert [r["stage"] for r in rows] == ["sine", "sine", "binary"]   # 8:8 on digits -> 2 + 1
    batches = math.ceil(70 / 32)
    assert [r["steps"] for r in rows] == [batches] * 3
    assert (result["epochs"], result["steps"]) == (3, 3 * batches)


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


@pytest.mark.slow
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


# --- what trains is the official recipe, and what is recorded ----------------------------
ARCH_OF = {"cifar10": "resnet20", "imagenet": "resnet18", "digits": "resnet20"}


def _recipe_cases():
    """(binarizer, dataset, arch, params the user set) for every built-in × each dataset[/arch]
    its recipes name, plus digits (class defaults only) and one user-set value."""
    cases = []
    for name in registry.list_binarizers():
        cls = registry.get(name)
        if cls.origin != "built-in":
            continue
        for key in [*cls.recipes, "digits"]:
            if key == "default":    # merged into every dataset's recipe
                continue
            dataset, _, arch = key.partition("/")
            cases.append((name, dataset, arch or ARCH_OF[dataset], {}))
    cases.append(("biper", "cifar10", "resnet20", {"reg_tau": 0.1}))
    return cases


def _official_binarizer(cls, dataset, arch, stage, given):
    """The class defaults, under the official recipe's values for the stage ('dataset', then
    'dataset/arch'), under what the user set: read straight from the class's `recipes` table."""
    official = {}
    for key in (dataset, f"{dataset}/{arch}"):
        official.update(cls.recipes.get(key, {}).get(stage, {}).get("binarizer", {}))
    return {**cls.defaults(), **official, **given}


@pytest.mark.parametrize("name, dataset, arch, given", _recipe_cases(),
                         ids=lambda v: v if isinstance(v, str) else str(v or ""))
@pytest.mark.slow
def test_live_binarizer_values_are_the_official_recipe_and_config_json(
        name, dataset, arch, given, request, tmp_path, monkeypatch):
    from bnnbench.api import layers as bnn
    from bnnbench.engine import train

    data_dir = {"cifar10": lambda: request.getfixturevalue("cifar10_root"),
                "imagenet": lambda: request.getfixturevalue("cifar10_jpeg_tree"),
                "digits": lambda: None}[dataset]()
    live = []   # per training step: every binary layer's (stage, parameters), read in the step
    step = train.train_step

    def spy(model, *args):
        live.append({json.dumps([layer.binarizer.stage, layer.binarizer.config()])
                     for layer in bnn.binary_layers(model)})
        return step(model, *args)

    monkeypatch.setattr(train, "train_step", spy)
    # evaluation is not what this test checks: skip the 10,000 test images
    monkeypatch.setattr(train, "evaluate", lambda *args: dict(test_loss=0.0, top1=0.0, top5=0.0))
    cfg = CellConfig(dataset=dataset, arch=arch, binarizer={"name": name, **given}, epochs=1,
                     subset=16, data_dir=data_dir and str(data_dir), device="cpu",
                     recipe={"distill": "none"})   # the binarizer's values, not a teacher's
    train_cell(cfg, tmp_path, progress=False)

    cls = registry.get(name)
    stages = runstore.read_json(tmp_path / runstore.CONFIG)["stages"]
    assert [s["name"] for s in stages] == list(cls.stages) and len(live) == len(cls.stages)
    for stage, seen, recorded in zip(cls.stages, live, stages):
        official = _official_binarizer(cls, dataset, arch, stage, given)
        assert len(seen) == 1                                 # every layer holds the same
        live_stage, live_params = json.loads(seen.pop())
        assert live_stage == stage
        assert live_params == pytest.approx(official)          # live == official recipe
        assert recorded["recipe"]["binarizer"] == live_params  # == config.json


@pytest.mark.parametrize("name, dataset, arch, stage, key, value", [
    ("irnet", "cifar10", "resnet20", "binary", "t_min", 1e-3),   # ResNet-20 code
    ("irnet", "cifar10", "vgg_small", "binary", "t_min", 0.1),   # VGG-Small code
    ("biper", "cifar10", "resnet20", "sine", "reg_tau", 0.037),
    ("biper", "cifar10", "resnet20", "binary", "reg_tau", 0.0468),
    ("biper", "imagenet", "resnet18", "sine", "reg_tau", 0.0),    # no regulariser on ImageNet
    ("biper", "imagenet", "resnet18", "binary", "reg_tau", 0.0),
])
def test_recipes_hold_the_official_values_of_the_spec(name, dataset, arch, stage, key, value):
    recipe = dict(stage_recipes(CellConfig(dataset=dataset, arch=arch, binarizer=name)))
    assert recipe[stage]["binarizer"][key] == value


def test_stage_two_can_start_from_the_best_epoch_of_stage_one(tmp_path, monkeypatch):
    tops = iter([30.0, 50.0, 40.0, 10.0])     # stage 1's epoch 1 is the best
    weights = []
    epoch = _CellRun._epoch

    def spy(self, stage_index, ep, optimizer):
        row = epoch(self, stage_index, ep, optimizer)
        weights.append({k: v.clone() for k, v in self.model.state_dict().items()
                        if isinstance(v, torch.Tensor)})
        return row

    monkeypatch.setattr(_CellRun, "_epoch", spy)
    monkeypatch.setattr("bnnbench.engine.train.evaluate", lambda *args: dict(
        test_loss=0.0, top1=next(tops), top5=0.0))
    starts = []
    enter = _CellRun._enter_stage

    def spy_enter(self, index):
        enter(self, index)
        starts.append({k: v.clone() for k, v in self.model.state_dict().items()
                       if isinstance(v, torch.Tensor)})

    monkeypatch.setattr(_CellRun, "_enter_stage", spy_enter)
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="biper", subset=64,
                     device="cpu", stage_recipes={"sine": {"epochs": 3},
                                                  "binary": {"epochs": 1, "init_from": "best"}})
    train_cell(cfg, tmp_path, progress=False)
    best, final = weights[1], weights[2]
    assert all(torch.equal(starts[1][k], best[k]) for k in best)
    assert not all(torch.equal(best[k], final[k]) for k in best)


def test_a_stage_can_start_late_in_its_schedule():
    # BiPer's official CIFAR-10 stage 2: epochs 1..299 of a 300-epoch schedule, warm-up 5
    (_, sine), (_, binary) = stage_recipes(CellConfig(dataset="cifar10", arch="resnet20",
                                                      binarizer="biper"))
    assert (sine["epochs"], sine["start_epoch"]) == (600, 0)
    assert (binary["epochs"], binary["start_epoch"]) == (299, 1)
    assert lr_at(binary, 0) == pytest.approx(0.0037 * 2 / 5)        # 0.4·lr, not 0.2·lr
    last = 0.0037 * (1 + math.cos(math.pi * (299 - 4) / (300 - 4))) / 2
    assert lr_at(binary, 298) == pytest.approx(last)


def test_refuses_a_folder_trained_with_another_recipe(tmp_path, monkeypatch):
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="irnet", epochs=1,
                     subset=100, device="cpu")
    train_cell(cfg, tmp_path, progress=False)
    irnet = registry.get("irnet")
    monkeypatch.setitem(irnet.recipes, "digits", {"binary": {"binarizer": {"t_min": 0.01}}})
    with pytest.raises(BnnbenchError, match="trained with another resolved recipe"):
        train_cell(cfg, tmp_path, progress=False)


@pytest.mark.slow
def test_cli_stage_recipe_sets_one_stage(tmp_path):
    out = tmp_path / "cell"
    done = subprocess.run(_run_cli(out, "--stage-recipe", "binary:epochs=1",
                                   "--stage-recipe", "sine:lr=0.002"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    stages = json.loads((out / runstore.CONFIG).read_text())["stages"]
    assert [s["recipe"]["epochs"] for s in stages] == [2, 1]      # --epochs 2, binary's own 1
    assert [s["recipe"]["lr"] for s in stages] == [0.002, 0.005]
    assert len(runstore.read_metrics(out / runstore.METRICS)) == 3
    for bad, message in (("binary=1", "STAGE:KEY=VALUE"), ("fast:epochs=1", "stages"),
                         ("binary:epochs=0", "'epochs' must be >= 1")):
        run = subprocess.run(_run_cli(tmp_path / "x", "--stage-recipe", bad),
                             capture_output=True, text=True)
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert message in run.stderr and run.stderr.count("\n") == 1


# --- faults in the run folder ------------------------------------------------------------
def _interrupted_after(epochs, cfg, out, monkeypatch):
    """Train `cfg` into `out` and stop it (as a Ctrl-C would) after `epochs` saved epochs."""
    save = _CellRun._save_checkpoint
    saved = []

    def stop_after(self, optimizer):
        save(self, optimizer)
        saved.append(1)
        if len(saved) == epochs:
            raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(_CellRun, "_save_checkpoint", stop_after)
        with pytest.raises(KeyboardInterrupt):
            train_cell(cfg, out, progress=False)


def _xnor(seed=0):
    return CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", epochs=3,
                      subset=200, seed=seed, device="cpu")


def test_a_damaged_checkpoint_costs_one_epoch_not_the_cell(tmp_path, monkeypatch, capsys):
    straight = train_cell(_xnor(), tmp_path / "straight", progress=False)
    assert not (tmp_path / "straight" / runstore.PREVIOUS).exists()   # dropped at the end
    out = tmp_path / "torn"
    _interrupted_after(2, _xnor(), out, monkeypatch)
    latest = out / runstore.CHECKPOINT
    assert (out / runstore.PREVIOUS).exists()
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])   # torn
    resumed = train_cell(_xnor(), out, progress=False)
    err = capsys.readouterr().err
    assert f"{latest} is damaged" in err and "resuming from checkpoint.prev.pt, one epoch" in err
    assert _numbers(runstore.read_metrics(out / runstore.METRICS)) == _numbers(
        runstore.read_metrics(tmp_path / "straight" / runstore.METRICS))
    assert (resumed["top1"], resumed["best_top1"]) == (straight["top1"], straight["best_top1"])


def test_both_checkpoints_damaged_is_one_line_naming_them(tmp_path, monkeypatch):
    out = tmp_path / "cell"
    _interrupted_after(2, _xnor(), out, monkeypatch)
    for name in (runstore.CHECKPOINT, runstore.PREVIOUS):
        (out / name).write_bytes(b"garbage")
    with pytest.raises(BnnbenchError) as err:
        train_cell(_xnor(), out, progress=False)
    message = str(err.value)
    assert str(out / runstore.CHECKPOINT) in message and str(out / runstore.PREVIOUS) in message
    assert "delete both" in message and "\n" not in message


def test_a_checkpoint_of_another_cell_is_refused(tmp_path, monkeypatch):
    _interrupted_after(2, _xnor(seed=0), tmp_path / "s0", monkeypatch)
    _interrupted_after(1, _xnor(seed=1), tmp_path / "s1", monkeypatch)
    for name in (runstore.CHECKPOINT, runstore.PREVIOUS):   # seed 0's copied into seed 1's
        (tmp_path / "s1" / name).write_bytes((tmp_path / "s0" / name).read_bytes())
    with pytest.raises(BnnbenchError, match="belongs to cell .*-s0-.*, not to this folder's"):
        train_cell(_xnor(seed=1), tmp_path / "s1", progress=False)
    assert CellRecord(tmp_path / "s1").status != "finished"


def test_a_damaged_result_or_metrics_is_rebuilt_from_the_checkpoint(tmp_path, monkeypatch):
    train_cell(_xnor(), tmp_path, progress=False)
    result = (tmp_path / runstore.RESULT).read_bytes()
    metrics = (tmp_path / runstore.METRICS).read_bytes()
    (tmp_path / runstore.RESULT).write_bytes(result[:20])
    with open(tmp_path / runstore.METRICS, "a") as fh:
        fh.write("{garbage\n")
    assert CellRecord(tmp_path).status == "damaged"

    def no_training(*args):
        raise AssertionError("an epoch was trained again")
    monkeypatch.setattr(_CellRun, "_epoch", no_training)
    train_cell(_xnor(), tmp_path, progress=False)
    assert (tmp_path / runstore.RESULT).read_bytes() == result
    assert (tmp_path / runstore.METRICS).read_bytes() == metrics
    assert CellRecord(tmp_path).status == "finished"
