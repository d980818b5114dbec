"""CIFAR ResNets (32×32 inputs, also fine on 8×8): ResNet-18 and ResNet-20 in two variants.

One private builder (`_cifar_resnet`) and one small typed function per architecture, as in
torchvision. The stem conv and the classifier stay full precision; every block 3×3 conv is
binary. Downsampling shortcuts are parameter free (AvgPool(2) + zero channel pad), so the
parameter counts are those of spec/binarizers.md's Architectures table.
"""
from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor, nn

from ..nn import initialise
from .blocks import BasicBlock, BiRealBlock, make_stage, nonlinearity_of


class CifarResNet(nn.Module):
    """stem (3×3 conv → BN [→ Hardtanh]) → stages of binary blocks → global avg pool →
    BatchNorm1d → fc. The pooling is adaptive, so any input size ≥ 8×8 works."""

    def __init__(self, block: type[nn.Module], depths: Sequence[int], widths: Sequence[int],
                 binarizer: Any, *, stem_hardtanh: bool, in_channels: int, num_classes: int):
        super().__init__()
        act = nonlinearity_of(binarizer)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.Hardtanh() if stem_hardtanh else nn.Identity(),
        )
        stages, width = [], widths[0]
        for i, (depth, out) in enumerate(zip(depths, widths)):
            stages.append(make_stage(block, width, out, depth, 1 if i == 0 else 2, binarizer,
                                     act, shortcut="pad"))
            width = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.bn = nn.BatchNorm1d(width)
        self.fc = nn.Linear(width, num_classes)
        initialise(self, nn.init.kaiming_normal_)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.bn(self.pool(x).flatten(1)))


def _cifar_resnet(block, depths, widths, binarizer, *, stem_hardtanh: bool, variant: str,
                  in_channels: int, num_classes: int) -> CifarResNet:
    model = CifarResNet(block, depths, widths, binarizer, stem_hardtanh=stem_hardtanh,
                        in_channels=in_channels, num_classes=num_classes)
    model.variant = variant
    return model


def resnet18(binarizer: Any, *, in_channels: int = 3, num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-18: widths 64-128-256-512, [2, 2, 2, 2] standard blocks, stem conv + BN
    with no nonlinearity, no max-pool (11,005,002 parameters with ReCU's per-channel α)."""
    return _cifar_resnet(BasicBlock, (2, 2, 2, 2), (64, 128, 256, 512), binarizer,
                         stem_hardtanh=False, variant="standard-shortcut",
                         in_channels=in_channels, num_classes=num_classes)


def resnet20(binarizer: Any, *, in_channels: int = 3, num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-20, Bi-Real style (IR-Net/ReCU/BiPer): widths 16-32-64, 3 blocks per stage,
    a shortcut around each binary conv, stem conv + BN + Hardtanh (270,522 parameters with
    ReCU's α). The downsample is AvgPool(2) + zero pad as in ReCU/BiPer; IR-Net's own code
    subsamples x[:, :, ::2, ::2] instead."""
    return _cifar_resnet(BiRealBlock, (3, 3, 3), (16, 32, 64), binarizer, stem_hardtanh=True,
                         variant="bireal-shortcut", in_channels=in_channels,
                         num_classes=num_classes)


def resnet20_std(binarizer: Any, *, in_channels: int = 3, num_classes: int = 10) -> CifarResNet:
    """CIFAR ResNet-20 with the standard block (one shortcut per two convs); same parameters
    as `resnet20` (e.g. RBNN's 86.5 is on this one, its 87.8 on the Bi-Real one)."""
    return _cifar_resnet(BasicBlock, (3, 3, 3), (16, 32, 64), binarizer, stem_hardtanh=True,
                         variant="standard-shortcut", in_channels=in_channels,
                         num_classes=num_classes)
