"""CIFAR-10 from the official python batches, held whole on the device as uint8.

Layout (https://www.cs.toronto.edu/~kriz/cifar.html): cifar-10-batches-py/ with data_batch_1..5
and test_batch, each a pickled dict with 'data' (uint8, N x 3072: the red plane, then green,
then blue, each 32x32 row-major) and 'labels'. 50,000 training and 10,000 test images.
Training augmentation as in the official codes: 4-pixel zero padding + random 32x32 crop and
a random horizontal flip.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import BnnbenchError
from . import locate
from .augment import norm_stats
from .datasets import dataset_shape, register_dataset
from .ondevice import InMemoryDataset

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
ENV_VARS = ("BNNBENCH_DATA",)
BUILD_OFFLINE = ("or build it offline with `python build_cifar10.py DIR` (the project's shared "
                 "data folder); then give --data-dir DIR (data_dir=DIR in Python) or set "
                 "$BNNBENCH_DATA=DIR")
HOW_TO_GET = ("get it with `python -c \"import torchvision; torchvision.datasets.CIFAR10('DIR', "
              "download=True)\"` (needs internet; download=True in load_dataset does the same) "
              + BUILD_OFFLINE)


def _folder_in(place: Path) -> Path | None:
    """`place` may be the folder holding cifar-10-batches-py/ or that folder itself."""
    for cand in (place / FOLDER, place):
        if cand.is_dir() and any((cand / f).exists() for f in TRAIN_FILES + (TEST_FILE,)):
            return cand
    return None


def find(data_dir=None, download: bool = False) -> Path:
    """The cifar-10-batches-py folder, downloading it with torchvision if asked and missing."""
    tried = locate.candidates(data_dir, ENV_VARS)
    for place, _ in tried:
        found = _folder_in(place)
        if found is not None:
            return found
    if download:
        dest = tried[0][0]
        if dest.name == FOLDER:
            dest = dest.parent
        try:
            import torchvision
            torchvision.datasets.CIFAR10(str(dest), train=True, download=True)
        except Exception as exc:  # offline, permissions, ...: say what we tried
            raise BnnbenchError(
                f"CIFAR-10 not found (looked in {locate.describe(tried)}) and downloading it "
                f"to {dest} failed ({type(exc).__name__}: {exc}); {BUILD_OFFLINE}") from exc
        return dest / FOLDER
    raise BnnbenchError(f"CIFAR-10 not found: looked for {FOLDER}/ in "
                        f"{locate.describe(tried)}; {HOW_TO_GET}")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise BnnbenchError(f"malformed CIFAR-10 folder {path.parent}: {path.name} is missing "
                            f"(expected {', '.join(TRAIN_FILES)}, {TEST_FILE}); "
                            "delete the folder and download or build it again")
    try:
        with open(path, "rb") as fh:
            d = pickle.load(fh, encoding="latin1")
        data = np.asarray(d["data"])
        labels = np.asarray(d["labels"] if "labels" in d else d["fine_labels"])
    except Exception as exc:
        raise BnnbenchError(f"malformed CIFAR-10 batch {path}: cannot read it as a pickled "
                            f"dict with 'data' and 'labels' ({type(exc).__name__}: {exc}); "
                            "delete the folder and download or build it again") from exc
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise BnnbenchError(f"malformed CIFAR-10 batch {path}: 'data' is {data.dtype} "
                            f"{tuple(data.shape)}, expected uint8 (N, 3072)")
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise BnnbenchError(f"malformed CIFAR-10 batch {path}: 'labels' must be {len(data)} "
                            f"integers in 0..9, got shape {tuple(labels.shape)}")
    return data, labels


def _load_split(folder: Path, files, limit: int | None = None):
    xs, ys, n = [], [], 0
    for name in files:
        if limit is not None and n >= limit:
            break  # `subset` needs only the first batches; don't read the others
        x, y = _read_batch(folder / name)
        xs.append(x)
        ys.append(y)
        n += len(y)
    x = torch.from_numpy(np.concatenate(xs)[:limit]).view(-1, 3, 32, 32)
    y = torch.from_numpy(np.concatenate(ys)[:limit].astype(np.int64))
    return x, y


@register_dataset("cifar10", family="cifar", in_channels=3, num_classes=10, image_size=32)
def load(*, data_dir=None, device="cpu", normalize: str | None = None,
         subset: int | None = None, download: bool = False, **_) -> InMemoryDataset:
    """CIFAR-10 on `device`; `subset`=N keeps the first N training images (test set whole)."""
    normalize = normalize or "cifar"
    mean, std = norm_stats(normalize)
    folder = find(data_dir, download)
    missing = [f for f in TRAIN_FILES + (TEST_FILE,) if not (folder / f).exists()]
    if missing:
        raise BnnbenchError(f"malformed CIFAR-10 folder {folder}: {', '.join(missing)} missing "
                            f"(expected {', '.join(TRAIN_FILES)}, {TEST_FILE}); "
                            "delete the folder and download or build it again")
    train_x, train_y = _load_split(folder, TRAIN_FILES, subset)
    test_x, test_y = _load_split(folder, (TEST_FILE,))
    shape = dataset_shape("cifar10")
    return InMemoryDataset(name="cifar10", family=shape.family, num_classes=shape.num_classes,
                           train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                           device=device, normalize=normalize, mean=mean, std=std,
                           unit=1 / 255, pad=4, flip=True)
