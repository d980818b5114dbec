"""Smoke test of the benchmark harness (bnnbench.bench): it runs, records and reports.
No timing assertions: speed is measured by `bnnbench bench`, not by the test suite."""
from __future__ import annotations

import json

import pytest
import torch

from bnnbench import list_binarizers
from bnnbench.api.layers import BinaryConv2d
from bnnbench.bench import benchmark as bench


def test_the_fp32_kind_is_the_registry_fp_entry_an_exact_conv():
    assert bench._binarizer_spec("fp32", "biper") == "fp" and "fp" in list_binarizers()
    layer = BinaryConv2d(3, 4, 3, padding=1, binarizer="fp")
    x = torch.randn(2, 3, 6, 6)
    ref = torch.nn.functional.conv2d(x, layer.weight, padding=1)
    torch.testing.assert_close(layer(x), ref, rtol=0, atol=0)


@pytest.mark.slow
def test_harness_measures_all_three_loops_and_writes_its_tables(cifar10_root, tmp_path):
    result = bench.run_benchmark(["resnet20"], ["sign_ste"], device="cpu", batch_size=4,
                                 warmup=1, steps=1, repeats=2, rounds=2, workers=0,
                                 data_dir=str(cifar10_root), isolate=False, profile=True,
                                 log=lambda _: None)
    kinds = {r["kind"]: r for r in result["rows"]}
    assert set(kinds) == {"engine", "fp32", "official"}
    for row in kinds.values():
        assert row["images_per_s"] > 0 and row["peak_mem_mb"] > 0
        # on a CPU the wall clock is the timer: both rates are the same measurement
        assert row["timer"] == "wall_clock" and row["wall_images_per_s"] == row["images_per_s"]
        assert row["timed_images"] == 4 * 1 * 2 * 2              # batch · steps · repeats · rounds
        rounds = row["images_per_s_rounds"]
        assert len(rounds) == 2 and row["images_per_s"] == sum(rounds) / 2
        ops = row["profile"]                           # top operators, largest first
        assert ops and all(a["ms_per_step"] >= b["ms_per_step"] for a, b in zip(ops, ops[1:]))
        assert 0 < sum(op["share"] for op in ops) <= 1 + 1e-9
    assert any("convolution" in op["op"] for op in kinds["engine"]["profile"])
    (line,) = result["summary"]
    assert line["engine_over_official"] > 0 and line["engine_over_fp32"] > 0
    jpath, mpath = bench.write(result, tmp_path)
    assert json.loads(jpath.read_text())["env"]["torch"] == torch.__version__
    table = mpath.read_text()
    assert "| resnet20 | sign_ste | 4 |" in table
    assert "Profile, resnet20 / sign_ste / engine" in table
