"""Backbones: parameter counts against the spec's Architectures table, forward/backward for every
registered binarizer, which layers are binary, the block nonlinearity, errors."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bnnbench import BinaryConv2d, BinaryLinear, BnnbenchError
from bnnbench.api import registry
from bnnbench.api.layers import binary_layers
from bnnbench.models import build_model, list_archs
from bnnbench.models.blocks import RPReLU

ALL = [("cifar", "resnet18"), ("cifar", "resnet20"), ("cifar", "resnet20_std"),
       ("cifar", "vgg_small"), ("imagenet", "resnet18"), ("imagenet", "resnet34")]

# spec/binarizers.md, Architectures. The spec's exact counts are those WITH ReCU's (and BiPer's)
# learnable per-output-channel α: the counts with a parameter-free binarizer (sign_ste) are the
# spec's minus sum(out_channels of the binary convs), e.g. resnet20 269,850 + 672 = 270,522.
# ImageNet: torchvision's 11,689,512 / 21,797,672 + BatchNorm1d(512) (1,024) (+ α with ReCU).
SIGN_STE_PARAMS = {
    ("cifar", "resnet18"): 11_001_162, ("cifar", "resnet20"): 269_850,
    ("cifar", "resnet20_std"): 269_850, ("cifar", "vgg_small"): 4_660_106,
    ("imagenet", "resnet18"): 11_690_536, ("imagenet", "resnet34"): 21_798_696,
}
RECU_PARAMS = {
    ("cifar", "resnet18"): 11_005_002, ("cifar", "resnet20"): 270_522,
    ("cifar", "resnet20_std"): 270_522, ("cifar", "vgg_small"): 4_661_770,
    ("imagenet", "resnet18"): 11_694_376, ("imagenet", "resnet34"): 21_806_248,
}
SPEC_MILLIONS = {("imagenet", "resnet18"): 11.69, ("imagenet", "resnet34"): 21.8}
N_BINARY_CONVS = {("cifar", "resnet18"): 16, ("cifar", "resnet20"): 18,
                  ("cifar", "resnet20_std"): 18, ("cifar", "vgg_small"): 5,
                  ("imagenet", "resnet18"): 16, ("imagenet", "resnet34"): 32}


def _classes(family):
    return 10 if family == "cifar" else 1000


def _meta(family, arch, binarizer):
    """Built on the meta device: shapes only, so the ImageNet models cost nothing."""
    with torch.device("meta"):
        return build_model(arch, binarizer, family=family, num_classes=_classes(family))


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("family,arch", ALL)
def test_parameter_counts_match_the_spec(family, arch):
    plain = _meta(family, arch, "sign_ste")
    recu = _meta(family, arch, "recu")
    alpha = sum(layer.out_channels for layer in binary_layers(recu))
    assert _count(plain) == SIGN_STE_PARAMS[family, arch]
    assert _count(recu) == RECU_PARAMS[family, arch] == _count(plain) + alpha
    if (family, arch) in SPEC_MILLIONS:
        assert round(_count(recu) / 1e6, 2) == pytest.approx(SPEC_MILLIONS[family, arch], abs=0.01)


def test_reactnet_adds_its_thresholds_and_rprelu():
    plain, react = _meta("cifar", "resnet20", "sign_ste"), _meta("cifar", "resnet20", "reactnet")
    theta = sum(layer.in_channels for layer in binary_layers(react))
    rprelu = sum(3 * m.beta.numel() for m in react.modules() if isinstance(m, RPReLU))
    assert rprelu == 3 * sum(layer.out_channels for layer in binary_layers(react))
    assert _count(react) == _count(plain) + theta + rprelu


def _forward_backward(model, x):
    y = model(x)
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    return y


@pytest.mark.parametrize("binarizer", registry.list_binarizers())
@pytest.mark.parametrize("size,channels", [(8, 1), (32, 3)])
def test_resnet20_every_binarizer_every_stage(binarizer, size, channels):
    for stage in registry.get(binarizer).stages:
        torch.manual_seed(0)
        model = build_model("resnet20", binarizer, in_channels=channels, input_size=size)
        for layer in binary_layers(model):
            layer.binarizer.stage = stage
        y = _forward_backward(model, torch.randn(4, channels, size, size))
        assert y.shape == (4, 10) and torch.isfinite(y).all()
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(2, channels, size, size)).shape == (2, 10)


# every arch with the plain binarizer, and the ones that add per-layer state (ReCU's α) or
# change the block (ReActNet's RPReLU) on a few; small inputs keep the 11–22 M-parameter models fast
@pytest.mark.parametrize("family,arch,size,channels,binarizer", [
    ("cifar", "resnet18", 8, 1, "sign_ste"), ("cifar", "resnet18", 8, 1, "recu"),
    ("cifar", "resnet20_std", 8, 1, "sign_ste"), ("cifar", "resnet20_std", 8, 1, "reactnet"),
    ("cifar", "vgg_small", 8, 1, "reactnet"), ("cifar", "vgg_small", 32, 3, "recu"),
    ("imagenet", "resnet18", 32, 3, "sign_ste"), ("imagenet", "resnet18", 32, 3, "reactnet"),
    ("imagenet", "resnet34", 32, 3, "recu"),
])
def test_every_arch_forward_backward(family, arch, size, channels, binarizer):
    torch.manual_seed(0)
    model = build_model(arch, binarizer, family=family, in_channels=channels, num_classes=7,
                        input_size=size)
    y = _forward_backward(model, torch.randn(2, channels, size, size))
    assert y.shape == (2, 7)
    assert model.input_shape == (channels, size, size)


@pytest.mark.parametrize("family,arch", ALL)
def test_first_and_last_full_precision_block_convs_binary(family, arch):
    model = _meta(family, arch, "sign_ste")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert not isinstance(convs[0], BinaryConv2d)            # the stem / conv0
    assert convs[0].in_channels == 3
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and not isinstance(linears[0], BinaryLinear)
    assert linears[0] is model.fc
    binary = list(binary_layers(model))
    assert len(binary) == N_BINARY_CONVS[family, arch]
    # every 3×3 conv but the first is binary; the 1×1 downsample convs stay full precision
    for conv in convs[1:]:
        assert isinstance(conv, BinaryConv2d) == (conv.kernel_size == (3, 3))
    # one binarizer instance per layer
    assert len({id(layer.binarizer) for layer in binary}) == len(binary)


def test_model_labels_and_list_archs():
    assert list_archs("cifar") == ["resnet18", "resnet20", "resnet20_std", "vgg_small"]
    assert list_archs("imagenet") == ["resnet18", "resnet34"]
    assert list_archs() == ["resnet18", "resnet20", "resnet20_std", "resnet34", "vgg_small"]
    variants = {"resnet18": "standard-shortcut", "resnet20": "bireal-shortcut",
                "resnet20_std": "standard-shortcut", "vgg_small": "plain"}
    for arch, variant in variants.items():
        model = _meta("cifar", arch, "xnor")
        assert (model.arch, model.family, model.variant) == (arch, "cifar", variant)
    model = _meta("imagenet", "resnet34", "xnor")
    assert (model.arch, model.family, model.variant) == ("resnet34", "imagenet", "bireal-shortcut")
    assert model.input_shape == (3, 224, 224)


def test_unknown_arch_and_family_errors():
    with pytest.raises(BnnbenchError, match="resnet20, resnet20_std, vgg_small"):
        build_model("resnet50", "sign_ste")
    with pytest.raises(BnnbenchError, match="known: resnet18, resnet34"):
        build_model("vgg_small", "sign_ste", family="imagenet")
    with pytest.raises(BnnbenchError, match="known: cifar, imagenet"):
        build_model("resnet18", "sign_ste", family="mnist")
    with pytest.raises(BnnbenchError, match="unknown binarizer"):
        build_model("resnet20", "nope")
    with pytest.raises(BnnbenchError, match="divisible by 8"):
        build_model("vgg_small", "sign_ste", input_size=28)


def _block_nonlinearities(model):
    return [m for m in model.stages.modules() if isinstance(m, (nn.Hardtanh, RPReLU))]


def test_block_nonlinearity_follows_the_binarizer_class():
    sign_ste = registry.get("sign_ste")
    assert registry.get("reactnet").nonlinearity == "rprelu"
    react = _meta("cifar", "resnet20", "reactnet")
    acts = _block_nonlinearities(react)
    assert len(acts) == 18 and all(isinstance(m, RPReLU) for m in acts)
    plain = _meta("cifar", "resnet20", "sign_ste")
    acts = _block_nonlinearities(plain)
    assert len(acts) == 18 and all(isinstance(m, nn.Hardtanh) for m in acts)
    assert not any(isinstance(m, RPReLU) for m in plain.modules())
    # a plugin asking for no nonlinearity (a subclass: models never look at names)
    identity = type("NoAct", (sign_ste,), {"nonlinearity": "identity"})
    assert _block_nonlinearities(_meta("imagenet", "resnet18", identity)) == []
    vgg = _meta("cifar", "vgg_small", "reactnet")
    assert sum(isinstance(m, RPReLU) for m in vgg.modules()) == 5
    with pytest.raises(BnnbenchError, match="nonlinearity 'relu6'"):
        build_model("resnet20", type("Bad", (sign_ste,), {"nonlinearity": "relu6"}))


def test_rprelu_is_a_shifted_prelu():
    act = RPReLU(2)
    with torch.no_grad():
        act.gamma.copy_(torch.tensor([1.0, -1.0]))
        act.zeta.copy_(torch.tensor([0.5, 0.0]))
    x = torch.tensor([[0.0, 3.0], [0.0, -3.0]]).view(1, 2, 2, 1)
    # channel 0: x − 1 → (−1, 2) → PReLU 0.25 → (−0.25, 2) → +0.5 → (0.25, 2.5)
    # channel 1: x + 1 → (1, −2) → (1, −0.5)
    expected = torch.tensor([[0.25, 2.5], [1.0, -0.5]]).view(1, 2, 2, 1)
    assert torch.allclose(act(x), expected)


def test_imagenet_batchnorm2d_gamma_starts_tiny_and_shortcuts_are_shaped():
    model = build_model("resnet18", "sign_ste", family="imagenet", num_classes=1000)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(torch.all(m.weight == 1e-8) for m in bns)
    assert torch.all(model.bn.weight == 1)                  # BatchNorm1d keeps γ = 1
    cifar = _meta("cifar", "resnet20", "sign_ste")
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in cifar.modules())


def test_vgg_small_classifier_width_follows_input_size():
    assert _meta("cifar", "vgg_small", "sign_ste").fc.in_features == 8192
    with torch.device("meta"):
        small = build_model("vgg_small", "sign_ste", in_channels=1, input_size=8)
    assert small.fc.in_features == 512


def test_channels_last_matches_contiguous():
    torch.manual_seed(0)
    for arch, size in (("resnet20", 32), ("vgg_small", 16)):
        model = build_model(arch, "recu", input_size=size).eval()
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            ref = model(x)
            model = model.to(memory_format=torch.channels_last)
            out = model(x.contiguous(memory_format=torch.channels_last))
        assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compiles_as_one_graph():
    """No data-dependent Python control flow: dynamo traces the whole model (eager backend, so
    the test checks tracing, not code generation)."""
    torch._dynamo.reset()
    model = build_model("resnet20", "reactnet", in_channels=1, input_size=8)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    x = torch.randn(2, 1, 8, 8)
    compiled(x).sum().backward()
    assert model.fc.weight.grad is not None


@pytest.mark.parametrize("arch", ["resnet20", "resnet20_std"])
def test_resnet20_classifier_keeps_pytorch_default_init_as_recu_biper(arch):
    # PyTorch's Linear default: U(−1/√fan_in, 1/√fan_in), std 1/√(3·64) ≈ 0.072 here;
    # Kaiming-normal (IR-Net's choice) would have std √(2/64) ≈ 0.177 and exceed the bound
    torch.manual_seed(0)
    fc = build_model(arch, "biper").fc
    bound = 1 / math.sqrt(64)
    assert fc.weight.abs().max() <= bound
    assert fc.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    convs = [m for m in build_model(arch, "xnor").modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:   # convs stay Kaiming-normal (fan-in)
        fan_in = conv.weight[0].numel()
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.25)
