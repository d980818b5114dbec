"""A binarizer's own quantities travel with it (tests/plugins/sign_balance.py, a plugin written
against bnnbench's public names): its `metrics()` recorded as binarizer/<key> in metrics.jsonl
and result.json, averaged over seeds in the leaderboard, drawn by its own report hook; a name
that cannot be recorded stops the cell before its first epoch, in one line."""
from __future__ import annotations

import io
import statistics
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_run import run_main
from registries import isolate

from bnnbench import BnnbenchError
from bnnbench.api import registry
from bnnbench.api.layers import binary_layers
from bnnbench.engine import binarizer_state, train
from bnnbench.engine.evaluate import load_run
from bnnbench.models import build_model
from bnnbench.store import runstore

PLUGIN = Path(__file__).parents[1] / "plugins" / "sign_balance.py"
BAD_METRIC = '''from bnnbench import Binarizer, register, sign_clipped_ste


@register("bad_metric")
class BadMetric(Binarizer):
    def weight(self, w):
        return sign_clipped_ste(w)

    def activation(self, x):
        return sign_clipped_ste(x)

    def metrics(self, w):
        return {"negative share": (w < 0).float().mean().item()}
'''


@pytest.fixture
def plugins(monkeypatch):
    """Plugins loaded in a test vanish after it (their registrations and modules)."""
    isolate(monkeypatch)
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("bnnbench_plugin_"):
            del sys.modules[name]


def _train(capsys, plugin: Path, name: str, out: Path, seed: int = 0):
    return run_main(capsys, "train", "--dataset", "digits", "--arch", "resnet20",
                    "--binarizer", name, "--plugin", str(plugin), "--epochs", "2",
                    "--subset", "64", "--seed", str(seed), "--device", "cpu", "--out", str(out))


def _negative_share(run: Path) -> float:
    """The share of negative latent weights of a run's final model, mean over its binary
    layers, counted here from the checkpoint (not by the plugin)."""
    shares = [(layer.weight < 0).double().mean().item() for layer in binary_layers(load_run(run))]
    return sum(shares) / len(shares)


@pytest.mark.slow
def test_a_plugins_quantity_is_recorded_averaged_and_drawn(plugins, tmp_path, capsys):
    store = tmp_path / "store"
    finals = []
    for seed in (0, 1):
        run = store / f"s{seed}"
        code, _, err = _train(capsys, PLUGIN, "sign_balance", run, seed)
        assert code == 0, err
        rows = runstore.read_metrics(run / runstore.METRICS)
        assert len(rows) == 2 and all(0 < row["binarizer/negative"] < 1 for row in rows)
        assert not {"negative", "qe", "b"} & set(rows[0])   # no bare name, no fixed column
        result = runstore.read_json(run / runstore.RESULT)
        assert result["binarizer/negative"] == rows[-1]["binarizer/negative"]
        assert result["binarizer/negative"] == pytest.approx(_negative_share(run), abs=1e-6)
        finals.append(result["binarizer/negative"])
    out = tmp_path / "report"
    code, csv, err = run_main(capsys, "report", str(store), "--out", str(out), "--format", "csv",
                              "--no-counts")
    assert code == 0, err
    board = pd.read_csv(io.StringIO(csv))
    assert list(board.columns)[-1] == "binarizer/negative_mean"   # appended after the fixed
    row = board.set_index("binarizer").loc["sign_balance"]
    assert row["n_seeds"] == 2
    assert row["binarizer/negative_mean"] == pytest.approx(statistics.mean(finals), rel=1e-12)
    for suffix in (".png", ".svg"):
        assert (out / "figures" / f"sign_balance_negative{suffix}").stat().st_size > 0
    assert "<figcaption>sign_balance_negative</figcaption>" in (out / "leaderboard.html").read_text()


def test_a_metric_name_that_cannot_be_recorded_stops_the_cell_before_an_epoch(
        plugins, tmp_path, capsys, monkeypatch):
    plugin = tmp_path / "bad_metric.py"
    plugin.write_text(BAD_METRIC)
    out = tmp_path / "cell"
    steps = []
    step = train.train_step
    monkeypatch.setattr(train, "train_step", lambda *args: steps.append(1) or step(*args))
    code, _, err = _train(capsys, plugin, "bad_metric", out)
    assert steps == []                                              # not one optimiser step
    assert code == 2
    shown = err.split("\r")[-1]                  # what the terminal shows once tqdm erased its bar
    assert shown.count("\n") == 1 and "Traceback" not in err and shown.startswith(
        "bnnbench: error: binarizer 'bad_metric': metrics() returns 'negative share', not a "
        "valid metric name")
    assert runstore.read_metrics(out / runstore.METRICS) == []
    assert runstore.read_json(out / runstore.RESULT)["status"] == "failed"


@pytest.mark.parametrize("key, valid", [("negative", True), ("_tau2", True), ("k", True),
                                        ("rate/epoch", False), ("1st", False), ("", False),
                                        ("tau ", False), (3, False)])
def test_which_metric_names_can_be_recorded(plugins, monkeypatch, key, valid):
    """A name is a column, a Tune key and a TensorBoard tag as it is: letters, digits and _,
    not starting with a digit ("/" would nest it under another name)."""
    registry.load_plugin_file(PLUGIN)
    cls = registry.get("sign_balance")
    monkeypatch.setattr(cls, "metrics", lambda self, w: {key: 0.25})
    model = build_model("resnet20", "sign_balance", in_channels=1, input_size=8)
    if valid:
        assert binarizer_state.metrics(model) == {f"binarizer/{key}": 0.25}
    else:
        with pytest.raises(BnnbenchError, match=r"^binarizer 'sign_balance': metrics\(\) "
                                                r"returns .*, not a valid metric name"):
            binarizer_state.metrics(model)
