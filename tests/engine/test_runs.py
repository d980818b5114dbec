"""A run folder as a trained model: load_run rebuilds it with nothing passed by hand, and its
evaluation gives the recorded top-1 exactly (same device and threads)."""
import pytest

from bnnbench.api import layers as bnn
from bnnbench.engine.evaluate import evaluate_run, load_run
from bnnbench.engine.train import train_cell
from bnnbench.errors import BnnbenchError
from bnnbench.experiment.cell import CellConfig
from bnnbench.store import runstore


@pytest.mark.parametrize("binarizer", ["biper", "reactnet", "xnor"])
def test_a_reloaded_run_scores_its_recorded_top1_exactly(binarizer, tmp_path):
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer={"name": binarizer},
                     epochs=1, subset=300, device="cpu", recipe={"distill": "none"})
    result = train_cell(cfg, tmp_path, progress=False)
    model = load_run(tmp_path)                 # digits: 1 channel, 8×8, found in config.json
    assert not model.training and next(model.parameters()).device.type == "cpu"
    final = runstore.read_json(tmp_path / runstore.CONFIG)["stages"][-1]
    assert model.run["stage"] == final["name"]
    for layer in bnn.binary_layers(model):
        assert layer.binarizer.stage == final["name"]
        assert layer.binarizer.config() == pytest.approx(final["recipe"]["binarizer"])
    scores = evaluate_run(tmp_path)
    assert (scores["top1"], scores["top5"]) == (result["top1"], result["top5"])


def test_load_run_names_what_is_missing(tmp_path):
    with pytest.raises(BnnbenchError, match="is not a run folder"):
        load_run(tmp_path)
    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", epochs=1, subset=64,
                     device="cpu")
    train_cell(cfg, tmp_path, progress=False)
    (tmp_path / runstore.CHECKPOINT).unlink()
    with pytest.raises(BnnbenchError, match="has no checkpoint yet"):
        load_run(tmp_path)


def test_cli_eval_prints_the_scores_beside_the_recorded_ones(tmp_path, capsys):
    from bnnbench.cli.main import main

    cfg = CellConfig(dataset="digits", arch="resnet20", binarizer="xnor", epochs=1, subset=64,
                     device="cpu")
    result = train_cell(cfg, tmp_path, progress=False)
    main(["eval", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.startswith(f"top-1 {result['top1']:.2f}%, top-5 {result['top5']:.2f}%")
    assert f"(recorded final top-1 {result['top1']:.2f}%)" in out


def test_the_notebook_names_are_top_level():
    import bnnbench
    from bnnbench import models
    from bnnbench.engine import evaluate as runs
    from bnnbench.engine import train
    from bnnbench.report import leaderboard as report
    from bnnbench.schedule import driver as tune

    assert bnnbench.load_run is runs.load_run and bnnbench.evaluate_run is runs.evaluate_run
    assert bnnbench.build_model is models.build_model and bnnbench.train_cell is train.train_cell
    assert bnnbench.run_grid is tune.run_grid and bnnbench.leaderboard is report.leaderboard
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bnnbench.nope
