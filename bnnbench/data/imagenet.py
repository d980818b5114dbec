"""ImageNet (or any ImageFolder tree) through torchvision, with the standard transforms.

Layout: <root>/train/<class>/*.JPEG and <root>/val/<class>/*.JPEG (`test/` is accepted for
the evaluation split too). Train: RandomResizedCrop(image_size), RandomHorizontalFlip,
ToTensor, Normalize; eval: Resize(image_size * 256 / 224), CenterCrop(image_size).

Determinism: an epoch is fixed by the caller's generator alone. The permutation and one seed
per sample are drawn from it up front; each sample's transform runs under its own seed, so the
result does not depend on the number of workers or on which worker decodes which image.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from ..errors import BnnbenchError
from . import locate
from .augment import norm_stats
from .base import Dataset, check_batch_size
from .datasets import dataset_shape, register_dataset

ENV_VARS = ("BNNBENCH_IMAGENET",)
EVAL_SPLITS = ("val", "test")
SUBSET_SEED = 0   # `subset` takes a fixed random sample: ImageFolder order is class by class
HOW_TO_GET = ("ImageNet cannot be downloaded automatically; put the ILSVRC-2012 images in "
              "ImageFolder layout (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) and pass "
              "data_dir=DIR or set $BNNBENCH_IMAGENET=DIR")


def _root_in(place: Path) -> Path | None:
    """`place` may be the tree itself or a folder holding it as imagenet/."""
    for cand in (place, place / "imagenet"):
        if (cand / "train").is_dir() and any((cand / s).is_dir() for s in EVAL_SPLITS):
            return cand
    return None


def find(data_dir=None) -> tuple[Path, Path]:
    """(train folder, evaluation folder)."""
    tried = locate.candidates(data_dir, ENV_VARS, cache_sub="imagenet")
    for place, _ in tried:
        root = _root_in(place)
        if root is not None:
            return root / "train", next(root / s for s in EVAL_SPLITS if (root / s).is_dir())
    raise BnnbenchError(f"ImageNet not found: looked for train/ and val/ in "
                        f"{locate.describe(tried)}; {HOW_TO_GET}")


def _image_folder(folder: Path, transform):
    from torchvision import datasets
    try:
        return datasets.ImageFolder(str(folder), transform)
    except (FileNotFoundError, RuntimeError) as exc:  # no class folders, or no images in them
        raise BnnbenchError(f"malformed ImageFolder tree: {folder}: {exc}; expected "
                            f"{folder}/<class>/<image files>") from exc


class _Seeded(torch.utils.data.Dataset):
    """Indexes with (index, seed): the sample's random transform runs under its own seed."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, key):
        index, seed = key
        # torchvision's random transforms draw from the global CPU generator: seed it for this
        # sample and restore it after. (torch.manual_seed would also reseed CUDA, so don't.)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return self.base[index]


class _Plan(Sampler):
    """Yields the (index, seed) pairs of one epoch, fixed in advance."""

    def __init__(self, indices: torch.Tensor, seeds: torch.Tensor):
        self.indices, self.seeds = indices, seeds

    def __len__(self):
        return len(self.indices)

    def __iter__(self):
        return zip(self.indices.tolist(), self.seeds.tolist())


class ImageFolderDataset(Dataset):
    """An ImageFolder train/eval pair decoded by DataLoader workers, batches moved to `device`."""

    def __init__(self, *, name: str, data_dir=None, device="cpu", normalize: str | None = None,
                 subset: int | None = None, image_size: int = 224, workers: int | None = None):
        from torchvision import transforms as T

        self.name = name
        shape = dataset_shape("imagenet")
        self.family, self.in_channels = shape.family, shape.in_channels
        self.device = torch.device(device)
        self.normalize = normalize or "imagenet"
        self.mean, self.std = norm_stats(self.normalize)
        self.image_size = image_size
        self.workers = min(8, os.cpu_count() or 1) if workers is None else workers
        train_dir, eval_dir = find(data_dir)
        norm = T.Normalize(self.mean, self.std)
        self.train_set = _image_folder(train_dir, T.Compose([
            T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(), norm]))
        self.test_set = _image_folder(eval_dir, T.Compose([
            T.Resize(int(image_size * 256 / 224)), T.CenterCrop(image_size), T.ToTensor(), norm]))
        if self.test_set.classes != self.train_set.classes:
            raise BnnbenchError(f"malformed ImageFolder tree: {eval_dir} has classes that differ "
                                f"from {train_dir} ({len(self.test_set.classes)} vs "
                                f"{len(self.train_set.classes)}); both need the same class folders")
        self.train_indices = torch.arange(len(self.train_set))
        if subset is not None and subset < len(self.train_set):
            g = torch.Generator().manual_seed(SUBSET_SEED)
            pick = torch.randperm(len(self.train_set), generator=g)[:subset]
            self.train_indices = pick.sort().values
        self.num_classes = len(self.train_set.classes)
        self.num_train, self.num_test = len(self.train_indices), len(self.test_set)

    def _loader(self, dataset, batch_size, sampler=None, generator=None):
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                          num_workers=self.workers, generator=generator,
                          pin_memory=self.device.type == "cuda",
                          persistent_workers=False, drop_last=False)

    def _to_device(self, batches):
        for x, y in batches:
            yield (x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))

    def train_batches(self, batch_size: int,
                      generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_batch_size(batch_size)
        dev = generator.device
        perm = torch.randperm(self.num_train, generator=generator, device=dev).cpu()
        seeds = torch.randint(0, 2 ** 62, (self.num_train,), generator=generator, device=dev).cpu()
        # The loader's own generator only seeds worker processes; samples carry their seeds.
        loader_gen = torch.Generator().manual_seed(int(seeds[0]) if len(seeds) else 0)
        sampler = _Plan(self.train_indices[perm], seeds)
        loader = self._loader(_Seeded(self.train_set), batch_size, sampler, loader_gen)
        return self._to_device(loader)

    def test_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_batch_size(batch_size)
        return self._to_device(self._loader(self.test_set, batch_size))


@register_dataset("imagenet", family="imagenet", in_channels=3, num_classes=1000,
                  image_size=224)
def load(*, data_dir=None, device="cpu", normalize=None, subset=None, image_size=224,
         workers=None, **_) -> ImageFolderDataset:
    return ImageFolderDataset(name="imagenet", data_dir=data_dir, device=device,
                              normalize=normalize, subset=subset, image_size=image_size,
                              workers=workers)
