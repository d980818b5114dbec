"""complexity(): BOPs, FLOPs, OPs and size against known counts of the published backbones."""
from __future__ import annotations

import pytest
import torch

from bnnbench.models import build_model, complexity


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
