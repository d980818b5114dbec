"""A dataset held whole on the device (CIFAR-10, digits): shuffling, augmentation and
normalisation are tensor ops over whole batches, airbench-style, so the GPU never waits on
Python or on data loader workers.
"""
from __future__ import annotations

from typing import Iterator

import torch

from .augment import Normalizer, crop_flip, draw_crop_flip
from .base import Dataset, check_batch_size


class InMemoryDataset(Dataset):
    """Train/test images (N, C, H, W) and labels on `device`; augmentation = pad-`pad` random
    crop (+ horizontal flip if `flip`), then normalisation. Pixels are stored in units of
    `unit` (1/255 for uint8 images) so the stored tensors stay compact.
    """

    def __init__(self, *, name: str, family: str, num_classes: int,
                 train_x: torch.Tensor, train_y: torch.Tensor,
                 test_x: torch.Tensor, test_y: torch.Tensor,
                 device, normalize: str, mean, std, unit: float, pad: int, flip: bool):
        self.name, self.family, self.num_classes = name, family, num_classes
        self.device = torch.device(device)
        self.train_x = train_x.to(self.device)
        self.train_y = train_y.to(self.device, torch.int64)
        self.test_x = test_x.to(self.device)
        self.test_y = test_y.to(self.device, torch.int64)
        self.in_channels, self.image_size = int(train_x.shape[1]), int(train_x.shape[-1])
        self.num_train, self.num_test = len(self.train_y), len(self.test_y)
        self.normalize = normalize
        self.pad, self.flip = pad, flip
        self._norm = Normalizer(mean, std, unit, self.device)
        self.mean, self.std = self._norm.mean, self._norm.std

    def epoch_plan(self, generator: torch.Generator):
        """The epoch's randomness, drawn on the generator in a fixed order: the permutation of
        the training set and each position's crop offsets and flip flag (all on CPU)."""
        perm = torch.randperm(self.num_train, generator=generator, device=generator.device)
        dy, dx, fl = draw_crop_flip(self.num_train, self.pad, generator, self.flip)
        return perm.cpu(), dy.cpu(), dx.cpu(), fl.cpu()

    def train_batches(self, batch_size: int,
                      generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_batch_size(batch_size)
        # Draw now, not on the first next(): the generator's state after this call does not
        # depend on how far the caller iterates.
        plan = [t.to(self.device, non_blocking=True) for t in self.epoch_plan(generator)]
        return self._train_iter(batch_size, *plan)

    def _train_iter(self, batch_size, perm, dy, dx, fl):
        for i in range(0, self.num_train, batch_size):
            idx = perm[i:i + batch_size]
            x = crop_flip(self.train_x[idx], dy[i:i + batch_size], dx[i:i + batch_size],
                          fl[i:i + batch_size], self.pad)
            yield self._norm(x), self.train_y[idx]

    def test_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_batch_size(batch_size)
        return ((self._norm(self.test_x[i:i + batch_size]), self.test_y[i:i + batch_size])
                for i in range(0, self.num_test, batch_size))
