"""The plugin API as a third party uses it: tests/plugins/atan_anneal.py, one file of at most 40
lines of code using only names `bnnbench` exports, declares a surrogate by its derivative, a
schedule driven by p (per step), a parameter check, a block layout and a published number.
Also: p's exact values per epoch, the block layouts, the stage in the state_dict."""
from __future__ import annotations

import ast
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_run import run_main

import bnnbench
from bnnbench import BnnbenchError
from bnnbench.api import registry
from bnnbench.api.layers import binary_layers, set_stage
from bnnbench.api.surrogate import FUSE_MIN_NUMEL
from bnnbench.models import build_model
from registries import forget, isolate

PLUGIN = Path(__file__).parents[1] / "plugins" / "atan_anneal.py"


@pytest.fixture
def plugin(monkeypatch):
    """The plugin loaded as `--plugin` loads it; its registration vanishes after the test."""
    isolate(monkeypatch)
    registry.load_plugin_file(PLUGIN)
    module = next(m for m in sys.modules.values() if getattr(m, "__file__", None) == str(PLUGIN))
    yield module
    del sys.modules[module.__name__]


def _atan_derivative(x: np.ndarray, a: float) -> np.ndarray:
    return 2 * a / math.pi / (1 + (a * x) ** 2)


def test_the_plugin_is_short_and_uses_only_public_names():
    tree = ast.parse(PLUGIN.read_text())
    code_lines = {n.lineno for n in ast.walk(tree) if hasattr(n, "lineno")}
    assert len(code_lines) <= 40
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and n.module == "bnnbench" for a in n.names]
    others = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
              and n.module != "bnnbench"]
    assert imported and set(imported) <= set(bnnbench.__all__) and not others


def _value_and_grad(fn, x: torch.Tensor, up: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    y.backward(up)
    return y.detach(), x.grad


def test_fused_backward_is_the_formula_and_the_composed_form_equals_it(plugin):
    """Above FUSE_MIN_NUMEL the backward runs compiled (inductor); its gradient is upstream ×
    the stated derivative, also at 0 and ±1; the composed (eager) form gives the same."""
    from torch.profiler import profile

    shape = (4, 16, 64, 64)
    assert np.prod(shape) >= FUSE_MIN_NUMEL
    rng = np.random.default_rng(0)
    x, up = rng.normal(size=shape), rng.normal(size=shape)
    x.reshape(-1)[:3] = [0.0, 1.0, -1.0]
    xt, upt, a = torch.tensor(x), torch.tensor(up), torch.tensor(3.0, dtype=torch.float64)
    with profile() as prof:
        y, g = _value_and_grad(lambda v: plugin.atan_sign(v, a), xt, upt)
    assert any("Compiled" in e.key for e in prof.key_averages())
    np.testing.assert_array_equal(y.numpy(), np.sign(x))
    np.testing.assert_allclose(g.numpy(), up * _atan_derivative(x, 3.0), rtol=1e-12, atol=0)
    assert torch.isfinite(g).all()
    y_c, g_c = _value_and_grad(lambda v: plugin.atan_sign.composed(v, a), xt, upt)
    assert torch.equal(y_c, y)
    torch.testing.assert_close(g_c, g, rtol=1e-12, atol=0)


def test_validate_rejects_a_bad_parameter_in_one_line(plugin):
    with pytest.raises(BnnbenchError, match=r"^binarizer 'atan_anneal': needs 0 < a_min"):
        bnnbench.make({"name": "atan_anneal", "a_min": 0.0})


def test_schedule_metrics_published_and_report_without_plugin(plugin, tmp_path, capsys):
    """p advances per step (the plugin asks): after each epoch the row holds a at the last
    step's p = (e + (S−1)/S) / E; the report finds the plugin from the record and puts its
    declared published number beside it."""
    out = tmp_path / "store" / "cell"
    code, _, err = run_main(capsys, "train", "--dataset", "digits", "--arch", "resnet20",
                        "--binarizer", "atan_anneal", "--plugin", str(PLUGIN), "--epochs", "2",
                        "--subset", "64", "--device", "cpu", "--out", str(out))
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = math.ceil(64 / 32)                        # the digits recipe's batch size is 32
    for e, row in enumerate(rows):
        p = (e + (steps - 1) / steps) / 2
        assert row["binarizer/a"] == pytest.approx(1.0 * 10.0 ** p, rel=1e-6)
    forget(registry.BINARIZERS, "atan_anneal")        # a new session: nothing loaded
    del sys.modules[plugin.__name__]
    code, csv, err = run_main(capsys, "report", str(out.parent), "--out", str(tmp_path / "r"),
                          "--no-figures", "--format", "csv")
    assert code == 0, err
    row = pd.read_csv(io.StringIO(csv)).set_index("binarizer").loc["atan_anneal"]
    assert row["published_top1"] == 42.5 and row["published_source"] == "Tab. 1 of the test"
    assert row["delta_top1"] == pytest.approx(row["top1_mean"] - 42.5)
    sys.modules[plugin.__name__] = plugin             # for the fixture's cleanup


def test_p_is_epoch_over_the_stage_epochs_after_budget(tmp_path, capsys):
    """IR-Net's t in metrics.jsonl: p = e / E with E the stage's epochs shrunk by --budget
    (4 epochs × 0.5 = 2: p = 0, 1/2), set once per epoch."""
    out = tmp_path / "cell"
    code, _, err = run_main(capsys, "train", "--dataset", "digits", "--arch", "resnet20",
                        "--binarizer", "irnet", "--epochs", "4", "--budget", "0.5", "--subset",
                        "64", "--device", "cpu", "--out", str(out))
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for e, row in enumerate(rows):
        t = 10 ** (math.log10(0.1) + (e / 2) * (math.log10(10.0) - math.log10(0.1)))
        assert row["binarizer/t"] == pytest.approx(t, rel=1e-6)
        assert row["binarizer/k"] == pytest.approx(max(1 / t, 1))


def _order_of_calls(model: torch.nn.Module, block: torch.nn.Module, x: torch.Tensor) -> list:
    calls = []
    for name in ("conv1", "bn1", "act1"):
        getattr(block, name).register_forward_hook(lambda m, i, o, n=name: calls.append(n))
    model(x)
    return calls


def test_layouts_order_the_block_and_the_classifier_bn(monkeypatch, plugin):
    """conv_act_bn runs conv → act → BN; classifier_bn adds/removes the BatchNorm1d."""
    x = torch.randn(2, 3, 8, 8)
    ours = build_model("resnet20", "atan_anneal", input_size=8).eval()
    std = build_model("resnet20", "sign_ste", input_size=8).eval()
    assert _order_of_calls(ours, ours.stages[0][0], x) == ["conv1", "act1", "bn1"]
    assert _order_of_calls(std, std.stages[0][0], x) == ["conv1", "bn1", "act1"]
    assert isinstance(std.bn, torch.nn.BatchNorm1d)
    vgg = build_model("vgg_small", "sign_ste", input_size=8)
    assert isinstance(vgg.bn, torch.nn.Identity)      # VGG-Small's own: none
    monkeypatch.setattr(plugin.AtanAnneal, "classifier_bn", True)
    assert isinstance(build_model("vgg_small", "atan_anneal", input_size=8).bn,
                      torch.nn.BatchNorm1d)
    monkeypatch.setattr(plugin.AtanAnneal, "classifier_bn", False)
    assert isinstance(build_model("resnet20", "atan_anneal", input_size=8).bn, torch.nn.Identity)


def test_a_bad_layout_or_published_entry_is_refused_at_registration(monkeypatch):
    isolate(monkeypatch)

    def define(**attrs):
        cls = type("Bad", (bnnbench.Binarizer,), {"weight": lambda s, w: w,
                                                  "activation": lambda s, x: x, **attrs})
        return registry.register("bad_declaration")(cls)
    with pytest.raises(BnnbenchError, match="layout 'bn_first'; set it to one of"):
        define(layout="bn_first")
    with pytest.raises(BnnbenchError, match="lacks source"):
        define(published=(dict(top1=1.0, dataset="digits", arch="resnet20"),))
    with pytest.raises(BnnbenchError, match="'published top1' must be float"):
        define(published=(dict(top1="high", dataset="d", arch="a", source="s"),))


def test_the_stage_is_in_the_state_dict():
    trained = build_model("resnet20", "biper", input_size=8)
    set_stage(trained, "sine")
    fresh = build_model("resnet20", "biper", input_size=8)
    assert {layer.binarizer.stage for layer in binary_layers(fresh)} == {"binary"}
    fresh.load_state_dict(trained.state_dict())
    assert {layer.binarizer.stage for layer in binary_layers(fresh)} == {"sine"}
    state = trained.state_dict()
    key = next(k for k in state if k.endswith("binarizer._extra_state"))
    state[key] = {"stage": "ternary"}
    with pytest.raises(BnnbenchError, match="names stage 'ternary'"):
        fresh.load_state_dict(state)


def test_a_state_dict_saved_before_the_stage_was_in_it_still_loads():
    """A partial cell checkpointed by an older bnnbench resumes (strict load, stage kept)."""
    old = {k: v for k, v in build_model("resnet20", "biper", input_size=8).state_dict().items()
           if not k.endswith("_extra_state")}
    model = build_model("resnet20", "biper", input_size=8)
    set_stage(model, "sine")
    model.load_state_dict(old, strict=True)
    assert {layer.binarizer.stage for layer in binary_layers(model)} == {"sine"}
