"""ImageNet ResNet-18/34, Bi-Real style: a real-valued shortcut around every binary 3×3 conv.

Stem 7×7 conv (stride 2) → BN → Hardtanh → 3×3 max-pool; downsample shortcut AvgPool(2) →
full-precision 1×1 conv → BN; global avg pool → BatchNorm1d(512) → fc. Every BatchNorm2d's γ
starts at 1e-8 (spec/binarizers.md, Architectures). Widths are torchvision's, so the counts are
torchvision's plus the BatchNorm1d: 11.69 M / 21.8 M.
"""
from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from .archs import register_arch
from .blocks import BiRealBlock, ResNet

WIDTHS = (64, 128, 256, 512)
BN_GAMMA_INIT = 1e-8


def _imagenet_resnet(depths: Sequence[int], binarizer: Any, *, in_channels: int,
                     num_classes: int) -> ResNet:
    stem = nn.Sequential(
        nn.Conv2d(in_channels, WIDTHS[0], 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(WIDTHS[0]),
        nn.Hardtanh(),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    model = ResNet(stem, BiRealBlock, depths, WIDTHS, binarizer, shortcut="conv",
                   num_classes=num_classes)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, BN_GAMMA_INIT)
    model.variant = "bireal-shortcut"
    return model


@register_arch("resnet18", family="imagenet")
def resnet18(binarizer: Any, *, in_channels: int = 3, num_classes: int = 1000) -> ResNet:
    """Bi-Real ResNet-18: [2, 2, 2, 2] blocks of two binary 3×3 convs (11.69 M parameters)."""
    return _imagenet_resnet((2, 2, 2, 2), binarizer, in_channels=in_channels,
                            num_classes=num_classes)


@register_arch("resnet34", family="imagenet")
def resnet34(binarizer: Any, *, in_channels: int = 3, num_classes: int = 1000) -> ResNet:
    """Bi-Real ResNet-34: [3, 4, 6, 3] blocks of two binary 3×3 convs (21.8 M parameters)."""
    return _imagenet_resnet((3, 4, 6, 3), binarizer, in_channels=in_channels,
                            num_classes=num_classes)
