"""CIFAR ResNets (32×32 inputs, also fine on 8×8): ResNet-18 and ResNet-20 in two variants.

One private builder (`_cifar_resnet`) and one small typed function per architecture, as in
torchvision. The stem conv and the classifier stay full precision; every block 3×3 conv is
binary. Downsampling shortcuts are parameter free (AvgPool(2) + zero channel pad), so the
parameter counts are those of spec/binarizers.md's Architectures table.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .archs import register_arch
from .blocks import BasicBlock, BiRealBlock, ResNet


def _cifar_resnet(block, depths, widths, binarizer, *, stem_hardtanh: bool, variant: str,
                  in_channels: int, num_classes: int, kaiming_fc: bool = True) -> ResNet:
    """stem (3×3 conv → BN [→ Hardtanh]) → binary stages with parameter-free downsampling;
    the pooling is adaptive, so any input size ≥ 8×8 works."""
    stem = nn.Sequential(
        nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.Hardtanh() if stem_hardtanh else nn.Identity(),
    )
    model = ResNet(stem, block, depths, widths, binarizer, shortcut="pad",
                   num_classes=num_classes, kaiming_fc=kaiming_fc)
    model.variant = variant
    return model


@register_arch("resnet18", family="cifar")
def resnet18(binarizer: Any, *, in_channels: int = 3, num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-18: widths 64-128-256-512, [2, 2, 2, 2] standard blocks, stem conv + BN
    with no nonlinearity, no max-pool (11,005,002 parameters with ReCU's per-channel α)."""
    return _cifar_resnet(BasicBlock, (2, 2, 2, 2), (64, 128, 256, 512), binarizer,
                         stem_hardtanh=False, variant="standard-shortcut",
                         in_channels=in_channels, num_classes=num_classes)


@register_arch("resnet20", family="cifar")
def resnet20(binarizer: Any, *, in_channels: int = 3, num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-20, Bi-Real style (IR-Net/ReCU/BiPer): widths 16-32-64, 3 blocks per stage,
    a shortcut around each binary conv, stem conv + BN + Hardtanh (270,522 parameters with
    ReCU's α). The downsample is AvgPool(2) + zero pad as in ReCU/BiPer; IR-Net's own code
    subsamples x[:, :, ::2, ::2] instead. Convs start Kaiming-normal and the classifier keeps
    PyTorch's default init, as the ReCU/BiPer code (IR-Net's Kaiming-inits the classifier too:
    std 0.177 against ≈0.072 at 64 inputs)."""
    return _cifar_resnet(BiRealBlock, (3, 3, 3), (16, 32, 64), binarizer, stem_hardtanh=True,
                         variant="bireal-shortcut", in_channels=in_channels,
                         num_classes=num_classes, kaiming_fc=False)


@register_arch("resnet20_std", family="cifar")
def resnet20_std(binarizer: Any, *, in_channels: int = 3, num_classes: int = 10) -> ResNet:
    """CIFAR ResNet-20 with the standard block (one shortcut per two convs); same parameters
    as `resnet20` (e.g. RBNN's 86.5 is on this one, its 87.8 on the Bi-Real one) and the same
    initialisation (classifier at PyTorch's default)."""
    return _cifar_resnet(BasicBlock, (3, 3, 3), (16, 32, 64), binarizer, stem_hardtanh=True,
                         variant="standard-shortcut", in_channels=in_channels,
                         num_classes=num_classes, kaiming_fc=False)
