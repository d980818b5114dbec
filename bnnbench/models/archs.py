"""The architectures by family: `@register_arch(name, family=...)` adds a backbone builder,
`list_families`, `list_archs` and `arch_builder` look them up (the built-ins: cifar_resnet,
vgg, imagenet_resnet; plugins: the entry-point group `bnnbench.archs` or `--plugin FILE`).

A family is the input a builder fits and the default side of its images: "cifar" (32×32; also
8×8 ones such as the built-in digits) and "imagenet" (224×224). A name is unique within its
family (resnet18 is one of each).
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..api.registry import Registry
from ..errors import BnnbenchError

DEFAULT_INPUT_SIZE = {"cifar": 32, "imagenet": 224}


def _check_builder(name: str, builder: Callable) -> None:
    if not callable(builder):
        raise BnnbenchError(f"@register_arch('{name}'): {builder!r} is not a function; register "
                            "builder(binarizer, *, in_channels, num_classes[, input_size])")


ARCHS: dict[str, Registry[Callable[..., nn.Module]]] = {
    family: Registry(f"{family} architecture", "bnnbench.archs", check=_check_builder)
    for family in DEFAULT_INPUT_SIZE}


def register_arch(name: str, *, family: str):
    """Decorator: register `builder(binarizer, *, in_channels, num_classes[, input_size]) ->
    nn.Module` as the architecture `name` of `family`. The builder makes every binary conv a
    BinaryConv2d of `binarizer` and sets `model.variant`, a label of the backbone variant; its
    docstring's first line describes it in `bnnbench list --archs`."""
    archs = _family(family)

    def decorate(builder):
        return archs.add(name, builder)
    return decorate


def list_families() -> list[str]:
    return sorted(ARCHS)


def list_archs(family: str | None = None) -> list[str]:
    """The architectures of `family`, sorted; with no family, every name of every family."""
    if family is None:
        return sorted({name for archs in ARCHS.values() for name in archs.names()})
    return _family(family).names()


def _family(family: str) -> Registry[Callable[..., nn.Module]]:
    if family not in ARCHS:
        raise BnnbenchError(f"unknown model family '{family}'; known: "
                            f"{', '.join(list_families())}")
    return ARCHS[family]


def arch_builder(family: str, arch: str) -> Callable[..., nn.Module]:
    """The function that builds `arch` of `family` (its docstring describes the backbone)."""
    return _family(family).get(arch)
