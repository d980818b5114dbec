"""complexity(): BOPs, FLOPs, OPs and size against known counts of the published backbones."""
from __future__ import annotations

import pytest
import torch

from bnnbench.models import build_model, complexity, layer_table, list_archs, list_families


def _meta(arch, family="cifar", binarizer="sign_ste", **kw):
    with torch.device("meta"):
        return build_model(arch, binarizer, family=family,
                           num_classes=10 if family == "cifar" else 1000, **kw)


# Multiply-adds if every layer were full precision (the usual "FLOPs" of these backbones).
@pytest.mark.parametrize("arch,family,macs", [
    ("resnet18", "cifar", 0.56e9), ("resnet20", "cifar", 41e6), ("resnet20_std", "cifar", 41e6),
    ("vgg_small", "cifar", 0.61e9), ("resnet18", "imagenet", 1.81e9),
    ("resnet34", "imagenet", 3.66e9),
])
def test_full_precision_equivalent_macs(arch, family, macs):
    assert complexity(_meta(arch, family))["fp_equivalent_macs"] == pytest.approx(macs, rel=0.03)


def test_resnet20_exact_counts_and_size():
    c = complexity(_meta("resnet20"))
    # 18 binary 3×3 convs: 6·16·16·9·32² + (16·32 + 5·32·32)·9·16² + (32·64 + 5·64·64)·9·8²
    assert c["bops"] == 40_108_032
    assert c["flops"] == 3 * 16 * 9 * 32 * 32 + 64 * 10          # stem conv + fc
    assert c["ops"] == c["bops"] / 64 + c["flops"]
    assert c["fp_equivalent_macs"] == c["bops"] + c["flops"]
    assert c["params"] == 269_850
    assert c["binary_params"] == 13_824 + 4_608 + 46_080 + 18_432 + 184_320
    assert c["size_bits"] == c["binary_params"] + 32 * (c["params"] - c["binary_params"])


def test_bireal_resnet_ops_as_published():
    # Bi-Real Net (ECCV 2018) Table: OPs 1.63e8 (ResNet-18) and 1.93e8 (ResNet-34)
    assert complexity(_meta("resnet18", "imagenet"))["ops"] == pytest.approx(1.63e8, rel=0.01)
    assert complexity(_meta("resnet34", "imagenet"))["ops"] == pytest.approx(1.93e8, rel=0.01)


def test_binarizer_state_counts_as_full_precision():
    plain, recu = complexity(_meta("resnet20")), complexity(_meta("resnet20", binarizer="recu"))
    assert recu["params"] - plain["params"] == 672               # α per output channel
    assert recu["size_bits"] - plain["size_bits"] == 32 * 672
    assert recu["bops"] == plain["bops"]


def test_real_model_matches_meta_and_state_is_restored():
    model = build_model("resnet20", "recu", in_channels=1, input_size=8)
    model.train()
    c = complexity(model)
    assert model.training
    assert c == complexity(_meta("resnet20", binarizer="recu", in_channels=1, input_size=8))
    assert not any(m._forward_hooks for m in model.modules())
    # counts scale with the image area; an explicit shape overrides model.input_shape
    big = complexity(model, (1, 32, 32))
    assert big["bops"] == 16 * c["bops"]
    model.eval()
    complexity(model)
    assert not model.training


@pytest.mark.parametrize("family, arch", [(f, a) for f in list_families() for a in list_archs(f)])
def test_layer_table_sums_to_the_counts_the_report_uses(family, arch):
    with torch.device("meta"):
        model = build_model(arch, "recu", family=family)
    rows, total = layer_table(model), complexity(model)
    assert sum(r["bops"] for r in rows) == total["bops"] > 0
    assert sum(r["flops"] for r in rows) == total["flops"] > 0
    assert sum(r["binary_params"] for r in rows) == total["binary_params"]
    layer_params = sum(r["binary_params"] + r["real_params"] for r in rows)
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    bn = sum(p.numel() for m in model.modules() if isinstance(m, norms) for p in m.parameters())
    assert layer_params + bn == total["params"]          # every parameter is in a row or a BN
    assert rows[0]["bits"] == rows[-1]["bits"] == "32/32"  # first and last stay real


def test_cli_summary_prints_the_table_and_totals(capsys):
    from bnnbench.cli.main import main

    main(["summary", "--arch", "resnet20", "--binarizer", "recu"])
    out = capsys.readouterr().out
    assert "stages.0.0.conv1 BinaryConv2d   1/1" in out
    total = complexity(build_model("resnet20", "recu"))
    assert f"total: {total['params']:,} parameters ({total['binary_params']:,} binary" in out
