"""scikit-learn's 8x8 handwritten digits: a tiny real dataset that ships with scikit-learn,
so the first run on a fresh offline machine trains in about a minute on a CPU.

1,797 grayscale images (values 0..16), 10 classes; a fixed stratified split (seed 0) of
1,437 training and 360 test images. Held on the device as float32; augmentation is a pad-1
random crop (no flip: a mirrored digit is another symbol); normalised with the training
split's own mean and std, whatever `normalize` asks for (the RGB constants mean nothing here).
"""
from __future__ import annotations

import torch

from ..errors import BnnbenchError
from .augment import NORMALIZE
from .datasets import dataset_shape, register_dataset
from .ondevice import InMemoryDataset

NUM_TEST = 360   # 20% of 1,797, rounded as scikit-learn's train_test_split does
SPLIT_SEED = 0


def split():
    """(train_x, train_y, test_x, test_y) as tensors: x float32 (N, 1, 8, 8), y int64."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.int64)
    tr, te = train_test_split(torch.arange(len(y)).numpy(), test_size=NUM_TEST,
                              stratify=y.numpy(), random_state=SPLIT_SEED)
    tr, te = torch.from_numpy(tr), torch.from_numpy(te)
    return x[tr], y[tr], x[te], y[te]


@register_dataset("digits", family="cifar", in_channels=1, num_classes=10, image_size=8)
def load(*, device="cpu", normalize: str | None = None, subset: int | None = None,
         **_) -> InMemoryDataset:
    if normalize not in (None, "dataset", *NORMALIZE):
        raise BnnbenchError(f"unknown normalize {normalize!r}; known: "
                            f"{', '.join(['dataset', *sorted(NORMALIZE)])}")
    train_x, train_y, test_x, test_y = split()
    # Statistics of the full training split, so `subset` does not change the normalisation.
    mean, std = train_x.mean().item(), train_x.std().item()
    train_x, train_y = train_x[:subset], train_y[:subset]
    shape = dataset_shape("digits")
    return InMemoryDataset(name="digits", family=shape.family, num_classes=shape.num_classes,
                           train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                           device=device, normalize="dataset", mean=(mean,), std=(std,),
                           unit=1.0, pad=1, flip=False)
