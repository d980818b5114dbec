"""The datasets by name: `@register_dataset(name, family=..., in_channels=..., num_classes=...,
image_size=...)` adds a loader with its Shape, known without loading it; `list_datasets`,
`loader` and `dataset_shape` look them up (the built-ins: cifar10, digits, imagenet; plugins:
the entry-point group `bnnbench.datasets` or `--plugin FILE`)."""
from __future__ import annotations

from typing import Callable, NamedTuple

from ..api.registry import Registry
from ..errors import BnnbenchError
from .base import Dataset, Shape


class DatasetEntry(NamedTuple):
    """A registered dataset: its loader and the shape it declares."""
    load: Callable[..., Dataset]
    shape: Shape


DATASETS: Registry[DatasetEntry] = Registry("dataset", "bnnbench.datasets")


def register_dataset(name: str, *, family: str, in_channels: int, num_classes: int,
                     image_size: int):
    """Decorator: register `load(*, data_dir, device, normalize, subset, image_size, workers,
    download, **_) -> Dataset` as the dataset `name`, whose images are in_channels ×
    image_size × image_size in num_classes classes, for the models of `family` (cifar |
    imagenet). Its module's docstring describes it in `bnnbench list --datasets`."""
    shape = Shape(family, in_channels, num_classes, image_size)
    for field in ("in_channels", "num_classes", "image_size"):
        value = getattr(shape, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BnnbenchError(f"@register_dataset('{name}'): {field} must be a positive "
                                f"integer, got {value!r}")

    def decorate(load):
        DATASETS.add(name, DatasetEntry(load, shape))
        return load
    return decorate


def list_datasets() -> list[str]:
    return DATASETS.names()


def loader(name: str) -> Callable[..., Dataset]:
    """The function that loads the dataset `name` (its module's docstring describes it)."""
    return DATASETS.get(name).load


def dataset_shape(name: str) -> Shape:
    """What a model needs to know of the dataset `name`, without loading it."""
    return DATASETS.get(name).shape
