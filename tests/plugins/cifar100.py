"""CIFAR-100 from the official python batches, a third-party dataset written only against
names `bnnbench` exports (and numpy, torch).

Layout (https://www.cs.toronto.edu/~kriz/cifar.html): cifar-100-python/ with `train`, `test` and
`meta`; `train` and `test` are pickled dicts with b"data" (uint8, N × 3072: the red plane, then
green, then blue, each 32×32 row-major) and b"fine_labels" (100 classes). Held on the device,
augmented as CIFAR-10 (4-pixel pad + random crop, horizontal flip), normalised with the whole
training split's own per-channel mean and std.
"""
import pickle
from pathlib import Path

import numpy as np
import torch

from bnnbench import BnnbenchError, InMemoryDataset, register_dataset

FOLDER = "cifar-100-python"
FILES = ("train", "test", "meta")


def read_split(folder: Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 3, 32, 32), fine labels int64) of the file `name`."""
    with open(folder / name, "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    x = torch.from_numpy(np.asarray(batch[b"data"], dtype=np.uint8)).view(-1, 3, 32, 32)
    return x, torch.tensor(batch[b"fine_labels"], dtype=torch.int64)


@register_dataset("cifar100", family="cifar", in_channels=3, num_classes=100, image_size=32)
def load(*, data_dir=None, device="cpu", subset=None, **_) -> InMemoryDataset:
    folder = Path(data_dir or ".") / FOLDER
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise BnnbenchError(f"no CIFAR-100 in {folder}: {', '.join(missing)} missing; give "
                            f"--data-dir DIR holding {FOLDER}/")
    train_x, train_y = read_split(folder, "train")
    test_x, test_y = read_split(folder, "test")
    pixels = train_x.double() / 255   # the statistics of the whole split, whatever `subset`
    mean, std = pixels.mean(dim=(0, 2, 3)).tolist(), pixels.std(dim=(0, 2, 3)).tolist()
    return InMemoryDataset(name="cifar100", family="cifar", num_classes=100,
                           train_x=train_x[:subset], train_y=train_y[:subset], test_x=test_x,
                           test_y=test_y, device=device, normalize="dataset", mean=mean, std=std,
                           unit=1 / 255, pad=4, flip=True)
