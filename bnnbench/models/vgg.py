"""VGG-Small for CIFAR (the 1w1a VGG of LQ-Nets/IR-Net/ReCU/BiPer): six 3×3 convs
128-128-256-256-512-512, conv0 full precision, conv1–conv5 binary, fc full precision.

Per layer: conv → [MaxPool(2) after conv1, conv3, conv5] → BN → nonlinearity (→ nonlinearity →
BN in the binarizer's layout conv_act_bn; conv0 keeps BN → Hardtanh). The classifier
sees the flattened (input_size/8)² × 512 map (8192 at 32×32, as published), so the fc width
depends on the input size the model is built for; an adaptive pool to that grid (an identity at
the built size) keeps other input sizes runnable.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..api.layers import initialise
from ..errors import BnnbenchError
from .archs import register_arch
from .blocks import binary_conv3x3, classifier_bn_of, layout_of, make_nonlinearity, nonlinearity_of

WIDTHS = (128, 128, 256, 256, 512, 512)
POOL_AFTER = (1, 3, 5)


class VGGSmall(nn.Module):
    def __init__(self, binarizer: Any, *, in_channels: int, num_classes: int, input_size: int):
        super().__init__()
        if input_size < 8 or input_size % 8:
            raise BnnbenchError(f"vgg_small needs an input size divisible by 8 (three 2×2 "
                                f"max-pools), got {input_size}; resize the images")
        act, layout = nonlinearity_of(binarizer), layout_of(binarizer)
        layers: list[nn.Module] = []
        width = in_channels
        for i, out in enumerate(WIDTHS):
            if i == 0:
                layers += [nn.Conv2d(width, out, 3, padding=1, bias=False)]
            else:
                layers += [binary_conv3x3(width, out, 1, binarizer)]
            if i in POOL_AFTER:
                layers.append(nn.MaxPool2d(2))
            post = [nn.BatchNorm2d(out),
                    nn.Hardtanh() if i == 0 else make_nonlinearity(act, out)]
            layers += post[::-1] if i > 0 and layout == "conv_act_bn" else post
            width = out
        self.features = nn.Sequential(*layers)
        grid = input_size // 8
        self.pool = nn.AdaptiveAvgPool2d(grid)
        features = width * grid * grid
        self.bn = nn.BatchNorm1d(features) if classifier_bn_of(binarizer, False) else nn.Identity()
        self.fc = nn.Linear(features, num_classes)
        initialise(self, nn.init.kaiming_normal_)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.bn(self.pool(self.features(x)).flatten(1)))


@register_arch("vgg_small", family="cifar")
def vgg_small(binarizer: Any, *, in_channels: int = 3, num_classes: int = 10,
              input_size: int = 32) -> VGGSmall:
    """VGG-Small (4,661,770 parameters at 32×32 with ReCU's α; fc 8192 → 10)."""
    model = VGGSmall(binarizer, in_channels=in_channels, num_classes=num_classes,
                     input_size=input_size)
    model.variant = "plain"
    return model
