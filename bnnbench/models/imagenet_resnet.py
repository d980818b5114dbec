"""ImageNet ResNet-18/34, Bi-Real style: a real-valued shortcut around every binary 3×3 conv.

Stem 7×7 conv (stride 2) → BN → Hardtanh → 3×3 max-pool; downsample shortcut AvgPool(2) →
full-precision 1×1 conv → BN; global avg pool → BatchNorm1d(512) → fc. Every BatchNorm2d's γ
starts at 1e-8 (spec/binarizers.md, Architectures). Widths are torchvision's, so the counts are
torchvision's plus the BatchNorm1d: 11.69 M / 21.8 M.
"""
from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor, nn

from ..nn import initialise
from .blocks import BiRealBlock, make_stage, nonlinearity_of

WIDTHS = (64, 128, 256, 512)
BN_GAMMA_INIT = 1e-8


class ImageNetResNet(nn.Module):
    def __init__(self, depths: Sequence[int], binarizer: Any, *, in_channels: int,
                 num_classes: int):
        super().__init__()
        act = nonlinearity_of(binarizer)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, WIDTHS[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(WIDTHS[0]),
            nn.Hardtanh(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages, width = [], WIDTHS[0]
        for i, (depth, out) in enumerate(zip(depths, WIDTHS)):
            stages.append(make_stage(BiRealBlock, width, out, depth, 1 if i == 0 else 2,
                                     binarizer, act, shortcut="conv"))
            width = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.bn = nn.BatchNorm1d(width)
        self.fc = nn.Linear(width, num_classes)
        initialise(self, nn.init.kaiming_normal_)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, BN_GAMMA_INIT)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.bn(self.pool(x).flatten(1)))


def _imagenet_resnet(depths: Sequence[int], binarizer: Any, *, in_channels: int,
                     num_classes: int) -> ImageNetResNet:
    model = ImageNetResNet(depths, binarizer, in_channels=in_channels, num_classes=num_classes)
    model.variant = "bireal-shortcut"
    return model


def resnet18(binarizer: Any, *, in_channels: int = 3, num_classes: int = 1000) -> ImageNetResNet:
    """Bi-Real ResNet-18: [2, 2, 2, 2] blocks of two binary 3×3 convs (11.69 M parameters)."""
    return _imagenet_resnet((2, 2, 2, 2), binarizer, in_channels=in_channels,
                            num_classes=num_classes)


def resnet34(binarizer: Any, *, in_channels: int = 3, num_classes: int = 1000) -> ImageNetResNet:
    """Bi-Real ResNet-34: [3, 4, 6, 3] blocks of two binary 3×3 convs (21.8 M parameters)."""
    return _imagenet_resnet((3, 4, 6, 3), binarizer, in_channels=in_channels,
                            num_classes=num_classes)
