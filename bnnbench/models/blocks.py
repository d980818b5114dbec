"""Block pieces shared by the backbones: nonlinearities, shortcuts and the two residual blocks.

Kept apart from the architectures so every backbone builds its blocks from the same parts, and
so a binarizer only ever influences a model through the BinaryConv2d it is given to and three
class attributes (models never look at a binarizer's name):
  nonlinearity    hardtanh | rprelu | identity
  layout          conv_bn_act: x ↦ act(BN(conv(x)) + shortcut(x))   (every built-in)
                  conv_act_bn: x ↦ BN(act(conv(x))) + shortcut(x)   (VGG-Small: conv → act → BN)
  classifier_bn   True/False: a BatchNorm1d before the classifier or none; None keeps the
                  backbone's own (the ResNets have one, VGG-Small has none)
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..api import registry
from ..api.layers import BinaryConv2d, channel_view, initialise
from ..errors import BnnbenchError

NONLINEARITIES = ("hardtanh", "rprelu", "identity")


class RPReLU(nn.Module):
    """ReActNet's RPReLU, per channel: x ↦ PReLU_β(x − γ) + ζ (β init 0.25, γ and ζ init 0).

    The shifts γ, ζ let each channel move its distribution before the next sign(); spec: reactnet.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.full((channels,), 0.25))
        self.zeta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x - channel_view(self.gamma, x), self.beta) + channel_view(self.zeta, x)


def nonlinearity_of(binarizer: Any) -> str:
    """The block nonlinearity a binarizer asks for (its class attribute), checked."""
    cls, _ = registry.resolve(binarizer)
    kind = getattr(cls, "nonlinearity", "hardtanh")
    if kind not in NONLINEARITIES:
        raise BnnbenchError(f"binarizer '{cls.name}' asks for nonlinearity '{kind}'; "
                            f"set it to one of: {', '.join(NONLINEARITIES)}")
    return kind


def layout_of(binarizer: Any) -> str:
    """The block layout a binarizer asks for (checked when it registered)."""
    cls, _ = registry.resolve(binarizer)
    return cls.layout


def classifier_bn_of(binarizer: Any, backbone_default: bool) -> bool:
    """Whether the classifier gets a BatchNorm1d: the binarizer's choice, else the backbone's."""
    cls, _ = registry.resolve(binarizer)
    return backbone_default if cls.classifier_bn is None else bool(cls.classifier_bn)


def post_conv(layout: str, y: Tensor, bn: nn.Module, act: nn.Module,
              residual: Tensor | None = None) -> Tensor:
    """A conv's output through BN and the nonlinearity in `layout`'s order, plus the residual."""
    if layout == "conv_act_bn":
        y = bn(act(y))
        return y if residual is None else y + residual
    y = bn(y)
    return act(y if residual is None else y + residual)


def make_nonlinearity(kind: str, channels: int) -> nn.Module:
    """A fresh nonlinearity module (RPReLU has per-channel parameters, so one per use)."""
    if kind == "hardtanh":
        return nn.Hardtanh()
    if kind == "rprelu":
        return RPReLU(channels)
    if kind == "identity":
        return nn.Identity()
    raise BnnbenchError(f"unknown nonlinearity '{kind}'; known: {', '.join(NONLINEARITIES)}")


def binary_conv3x3(in_channels: int, out_channels: int, stride: int, binarizer: Any) -> BinaryConv2d:
    """The binary 3×3 conv of every block (its own binarizer instance, no bias)."""
    return BinaryConv2d(in_channels, out_channels, 3, stride, padding=1, bias=False,
                        binarizer=binarizer)


def _downsample_pool() -> nn.AvgPool2d:
    # ceil_mode makes the pooled size ceil(n/2), the size of a stride-2 3×3 conv with padding 1,
    # so odd feature maps still line up; on even sizes it is the plain AvgPool2d(2).
    return nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False)


class PadShortcut(nn.Module):
    """Parameter-free CIFAR shortcut: AvgPool(2) when strided, then zero channels padded evenly
    on both sides up to `out_channels` (the "option A" shortcut of the CIFAR ResNets)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.pool = _downsample_pool() if stride != 1 else nn.Identity()
        extra = out_channels - in_channels
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        if self.pad == (0, 0):  # decided at build time: static, not data dependent
            return x
        return F.pad(x, (0, 0, 0, 0, *self.pad))


def conv_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Bi-Real's ImageNet downsample: AvgPool(2) → full-precision 1×1 conv → BN."""
    return nn.Sequential(
        _downsample_pool() if stride != 1 else nn.Identity(),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    )


def make_shortcut(kind: str, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity where shapes agree, else the family's downsample ("pad" or "conv")."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "pad":
        return PadShortcut(in_channels, out_channels, stride)
    return conv_shortcut(in_channels, out_channels, stride)


class BiRealBlock(nn.Module):
    """Two binary 3×3 convs, each wrapped by its own real-valued shortcut (Bi-Real style):
    x ↦ act(BN(conv(x)) + shortcut(x)), twice (in the binarizer's layout); only the first conv
    downsamples."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, binarizer: Any,
                 nonlinearity: str, shortcut: str):
        super().__init__()
        self.layout = layout_of(binarizer)
        self.conv1 = binary_conv3x3(in_channels, out_channels, stride, binarizer)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)
        self.act1 = make_nonlinearity(nonlinearity, out_channels)
        self.conv2 = binary_conv3x3(out_channels, out_channels, 1, binarizer)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = make_nonlinearity(nonlinearity, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = post_conv(self.layout, self.conv1(x), self.bn1, self.act1, self.shortcut(x))
        return post_conv(self.layout, self.conv2(x), self.bn2, self.act2, x)


class BasicBlock(nn.Module):
    """The standard ResNet basic block, binary: one shortcut around two convs,
    x ↦ act(BN(conv2(act(BN(conv1(x))))) + shortcut(x)) (in the binarizer's layout)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, binarizer: Any,
                 nonlinearity: str, shortcut: str):
        super().__init__()
        self.layout = layout_of(binarizer)
        self.conv1 = binary_conv3x3(in_channels, out_channels, stride, binarizer)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = make_nonlinearity(nonlinearity, out_channels)
        self.conv2 = binary_conv3x3(out_channels, out_channels, 1, binarizer)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)
        self.act2 = make_nonlinearity(nonlinearity, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        out = post_conv(self.layout, self.conv1(x), self.bn1, self.act1)
        return post_conv(self.layout, self.conv2(out), self.bn2, self.act2, self.shortcut(x))


def make_stage(block: type[nn.Module], in_channels: int, out_channels: int, blocks: int,
               stride: int, binarizer: Any, nonlinearity: str, shortcut: str) -> nn.Sequential:
    """`blocks` blocks; the first one changes width and stride."""
    layers = []
    for i in range(blocks):
        layers.append(block(in_channels if i == 0 else out_channels, out_channels,
                            stride if i == 0 else 1, binarizer, nonlinearity, shortcut))
    return nn.Sequential(*layers)


class ResNet(nn.Module):
    """The body every ResNet here shares: a full-precision `stem`, stages of binary blocks (the
    first stage keeps the resolution, each later one halves it), global average pooling,
    BatchNorm1d (unless the binarizer's `classifier_bn` is False) and a full-precision fc. Conv weights start Kaiming-normal, and so does the fc
    unless `kaiming_fc` is False (it then keeps PyTorch's default, as the ReCU/BiPer CIFAR
    ResNet-20 code); then each binarizer may re-initialise its own layers."""

    def __init__(self, stem: nn.Module, block: type[nn.Module], depths: Sequence[int],
                 widths: Sequence[int], binarizer: Any, *, shortcut: str, num_classes: int,
                 kaiming_fc: bool = True):
        super().__init__()
        act = nonlinearity_of(binarizer)
        self.stem = stem
        stages, width = [], widths[0]
        for i, (depth, out) in enumerate(zip(depths, widths)):
            stages.append(make_stage(block, width, out, depth, 1 if i == 0 else 2, binarizer,
                                     act, shortcut))
            width = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.bn = nn.BatchNorm1d(width) if classifier_bn_of(binarizer, True) else nn.Identity()
        self.fc = nn.Linear(width, num_classes)
        initialise(self, nn.init.kaiming_normal_, linear=kaiming_fc)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.bn(self.pool(x).flatten(1)))
