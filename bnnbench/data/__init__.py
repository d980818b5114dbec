"""Datasets: CIFAR-10 held on the device, ImageNet through ImageFolder, scikit-learn's digits.

    ds = load_dataset("cifar10", device="cuda")
    for x, y in ds.train_batches(256, torch.Generator().manual_seed(0)): ...
    for x, y in ds.test_batches(1000): ...

A plugin adds a dataset with `@register_dataset` (bnnbench.data.datasets), usually as an
`InMemoryDataset` (the images held on the device, as CIFAR-10 and digits are).

Where data lives: `data_dir`, then an environment variable ($BNNBENCH_DATA for CIFAR-10,
$BNNBENCH_IMAGENET for ImageNet), then $XDG_CACHE_HOME/bnnbench/data (~/.cache/bnnbench/data).
"""
from __future__ import annotations

from ..errors import BnnbenchError
from . import cifar10, digits, imagenet  # noqa: F401  (importing registers the built-ins)
from .augment import NORMALIZE
from .base import Dataset, Shape
from .datasets import dataset_shape, list_datasets, loader, register_dataset
from .ondevice import InMemoryDataset


def load_dataset(name: str, *, data_dir: str | None = None, device="cpu",
                 normalize: str | None = None, subset: int | None = None,
                 image_size: int = 224, workers: int | None = None,
                 download: bool = False) -> Dataset:
    """The dataset `name` with batches on `device`.

    normalize: "cifar" | "imagenet" | None (the dataset's default). subset: train on the first
    N training images only (the test set stays whole). image_size, workers: ImageFolder only.
    download: fetch CIFAR-10 with torchvision if it is found nowhere.
    """
    load = loader(name)
    if subset is not None and (not isinstance(subset, int) or subset < 1):
        raise BnnbenchError(f"subset must be a positive number of images, got {subset!r}")
    return load(data_dir=data_dir, device=device, normalize=normalize, subset=subset,
                image_size=image_size, workers=workers, download=download)


__all__ = ["Dataset", "InMemoryDataset", "NORMALIZE", "Shape", "dataset_shape", "list_datasets",
           "load_dataset", "loader", "register_dataset"]
