"""A third-party backbone written only against names `bnnbench` exports (and torch)."""
from torch import nn

from bnnbench import BinaryConv2d, register_arch


class TinyNet(nn.Module):
    """Full-precision stem and classifier around two binary convs, as the built-ins keep their
    first and last layers real."""

    variant = "tiny"

    def __init__(self, binarizer, in_channels: int, num_classes: int, width: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.Hardtanh())
        self.body = nn.Sequential(
            BinaryConv2d(width, width, 3, padding=1, binarizer=binarizer), nn.BatchNorm2d(width),
            BinaryConv2d(width, 2 * width, 3, stride=2, padding=1, binarizer=binarizer),
            nn.BatchNorm2d(2 * width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.body(self.stem(x))).flatten(1))


@register_arch("tiny_net", family="cifar")
def tiny_net(binarizer, *, in_channels: int = 3, num_classes: int = 10) -> TinyNet:
    """TinyNet: a 3×3 stem, two binary 3×3 convs of 16 and 32 channels, global pooling, fc."""
    return TinyNet(binarizer, in_channels, num_classes, width=16)
