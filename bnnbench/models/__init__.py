"""Backbones for the benchmark, built from (arch, binarizer): `build_model` and `list_archs`
(the registry of architectures, which plugins add to: bnnbench.models.archs).

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
from typing import Any

from torch import nn

from ..api import registry
from ..errors import BnnbenchError
from . import cifar_resnet, imagenet_resnet, vgg  # noqa: F401  (importing registers the built-ins)
from .archs import DEFAULT_INPUT_SIZE, arch_builder, list_archs, list_families, register_arch
from .complexity import complexity, layer_table


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
           "list_families", "register_arch"]
