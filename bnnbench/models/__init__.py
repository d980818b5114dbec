"""Backbones for the benchmark, built from (arch, binarizer): `build_model` and `list_archs`.

Family "cifar" (32×32 images; also 8×8 ones such as the built-in digits): resnet18, resnet20
(Bi-Real style), resnet20_std, vgg_small. Family "imagenet": resnet18, resnet34 (Bi-Real
style). First conv and last layer are full precision, every block conv is a BinaryConv2d with
its own binarizer instance; the block nonlinearity is the binarizer class's `nonlinearity`
(stems keep the spec's fixed Hardtanh / none whatever the binarizer). Conv weights start
Kaiming-normal (fan-in, as the IR-Net/ReCU code); the classifier too, except on the ResNet-20s,
whose ReCU/BiPer code leaves it at PyTorch's default; then each binarizer may re-initialise its
own layer (ReActNet's U[0, 0.001)). Known differences from official inits not made here: ReCU's
CIFAR ResNet-18 code initialises nothing (PyTorch defaults), IR-Net's VGG-Small draws convs
N(0, 2/(k²·C_out)) and the classifier N(0, 0.01²). Parameter counts: see tests/test_models.py.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from ..api import registry
from ..errors import BnnbenchError
from . import cifar_resnet, imagenet_resnet, vgg
from .complexity import complexity, layer_table

_ARCHS: dict[str, dict[str, Callable[..., nn.Module]]] = {
    "cifar": {
        "resnet18": cifar_resnet.resnet18,
        "resnet20": cifar_resnet.resnet20,
        "resnet20_std": cifar_resnet.resnet20_std,
        "vgg_small": vgg.vgg_small,
    },
    "imagenet": {
        "resnet18": imagenet_resnet.resnet18,
        "resnet34": imagenet_resnet.resnet34,
    },
}
DEFAULT_INPUT_SIZE = {"cifar": 32, "imagenet": 224}


def list_families() -> list[str]:
    return sorted(_ARCHS)


def list_archs(family: str | None = None) -> list[str]:
    """The architectures of `family`, sorted; with no family, every name of every family."""
    if family is None:
        return sorted({name for archs in _ARCHS.values() for name in archs})
    return sorted(_family(family))


def _family(family: str) -> dict[str, Callable[..., nn.Module]]:
    if family not in _ARCHS:
        raise BnnbenchError(f"unknown model family '{family}'; known: {', '.join(list_families())}")
    return _ARCHS[family]


def arch_builder(family: str, arch: str) -> Callable[..., nn.Module]:
    """The function that builds `arch` of `family` (its docstring describes the backbone)."""
    archs = _family(family)
    if arch not in archs:
        raise BnnbenchError(f"unknown {family} architecture '{arch}'; known: "
                            f"{', '.join(sorted(archs))}")
    return archs[arch]


def build_model(arch: str, binarizer: Any, *, family: str = "cifar", in_channels: int = 3,
                num_classes: int = 10, input_size: int | None = None) -> nn.Module:
    """Build `arch` of `family` with every binary conv binarised by `binarizer` (anything
    registry.resolve accepts).

    `input_size` is the image side the model is built for (default 32 for "cifar", 224 for
    "imagenet"). Only vgg_small's classifier depends on it (its fc takes the (input_size/8)²·512
    map: 8192 at 32×32, 512 at 8×8); the ResNets pool adaptively. It is also recorded as
    `model.input_shape` = (in_channels, input_size, input_size), which `complexity` uses.
    The model carries `arch`, `family` and `variant` (a label of the backbone variant).
    """
    builder = arch_builder(family, arch)
    for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
        if not isinstance(value, int) or value < 1:
            raise BnnbenchError(f"{name} must be a positive integer, got {value!r}")
    registry.resolve(binarizer)  # fail early, once, on a bad binarizer spec
    size = DEFAULT_INPUT_SIZE[family] if input_size is None else input_size
    kwargs: dict[str, Any] = dict(in_channels=in_channels, num_classes=num_classes)
    if "input_size" in inspect.signature(builder).parameters:
        kwargs["input_size"] = size
    model = builder(binarizer, **kwargs)
    model.arch = arch
    model.family = family
    model.input_shape = (in_channels, size, size)
    return model


__all__ = ["arch_builder", "build_model", "complexity", "layer_table", "list_archs",
           "list_families"]
