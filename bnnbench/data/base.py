"""The attributes every dataset has, so training and models never ask which dataset it is."""
from __future__ import annotations

from typing import Iterator, NamedTuple

import torch


class Shape(NamedTuple):
    """What a model needs to know of a dataset, known without loading it."""
    family: str          # which model builders fit: "cifar" | "imagenet"
    in_channels: int
    num_classes: int     # ImageNet: the standard 1000 (a folder's own count wins when loaded)
    image_size: int      # the side of a square input image


class Dataset:
    """A train/test pair that yields normalised float32 batches on `device`.

    Attributes: name, family ("cifar" | "imagenet": which model builders fit), in_channels,
    image_size (the side of a square input image),
    num_classes, num_train, num_test, device, normalize (the normalisation used), mean, std.
    """

    name: str
    family: str
    in_channels: int
    image_size: int
    num_classes: int
    num_train: int
    num_test: int
    device: torch.device
    normalize: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def train_batches(self, batch_size: int,
                      generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch, shuffled and augmented; every image once; deterministic given `generator`."""
        raise NotImplementedError

    def test_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The test set in order, without augmentation."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, family={self.family!r}, "
                f"train={self.num_train}, test={self.num_test}, classes={self.num_classes}, "
                f"in_channels={self.in_channels}, normalize={self.normalize!r}, "
                f"device={str(self.device)!r})")


def check_batch_size(batch_size: int) -> int:
    from ..errors import BnnbenchError
    if not isinstance(batch_size, int) or batch_size < 1:
        raise BnnbenchError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size
