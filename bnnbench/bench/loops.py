"""The two timed training loops of `bnnbench bench` (run and compared by bnnbench.bench.benchmark).

  engine    bnnbench's own step over on-device batches, as train_cell runs it;
  official  the loop the official code bases wrote: torchvision CIFAR10, per-image PIL
            transforms in DataLoader workers, fp32, per-step host reads of loss and top-1.
Both train the cell's last (fully binary) stage with its recipe, timed by bnnbench.bench.timing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data import NORMALIZE, load_dataset
from ..engine.optim import make_optimizer
from ..engine.train import train_step
from ..experiment import recipe as recipes
from ..experiment.cell import CellConfig
from ..models import build_model
from .timing import time_steps


def _recipe(arch: str, binarizer: Any, batch_size: int | None) -> tuple[str, dict]:
    """The cell's last stage (the fully binary one) and its recipe; batch size overridden."""
    stage, recipe = recipes.stage_recipes(CellConfig(dataset="cifar10", arch=arch,
                                                     binarizer=binarizer))[-1]
    if batch_size is not None:
        recipe["batch_size"] = batch_size
    return stage, recipe


def _model(arch: str, binarizer: Any, device: torch.device, stage: str,
           recipe: dict) -> torch.nn.Module:
    """The model in `stage` with that stage's binarizer values, as train_cell trains it."""
    from ..api import layers as bnn

    torch.manual_seed(0)
    model = build_model(arch, binarizer, family="cifar").to(device)
    bnn.set_binarizer_params(model, recipe["binarizer"])
    bnn.set_stage(model, stage)
    bnn.set_progress(model, 0.5)
    return model.train()


def _cycle(make_iter):
    """An endless stream of batches, starting a new epoch when one runs out."""
    epoch = 0
    while True:
        yield from make_iter(epoch)
        epoch += 1


def measure_engine(arch: str, binarizer: Any, *, device: torch.device, batch_size: int | None,
                   warmup: int, steps: int, repeats: int, compile: bool,
                   data_dir: str | None, profile: bool = False) -> dict:
    """bnnbench's engine: on-device data and train.train_step, as train_cell runs them."""
    stage, recipe = _recipe(arch, binarizer, batch_size)
    data = load_dataset("cifar10", data_dir=data_dir, device=device,
                        normalize=recipe["normalize"])
    model = _model(arch, binarizer, device, stage, recipe).to(
        memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    optimizer = make_optimizer(model, recipe)
    batches = _cycle(lambda e: data.train_batches(recipe["batch_size"],
                                                  torch.Generator().manual_seed(e)))
    loss_sum = torch.zeros((), device=device)

    def step(x, y):
        nonlocal loss_sum
        loss, _ = train_step(model, forward, optimizer, x, y)
        loss_sum = loss_sum + loss   # stays on the device, as in train_cell
    out = time_steps(step, batches, warmup, steps, device, repeats, profile)
    return {**out, "batch_size": recipe["batch_size"], "stage": stage,
            "final_loss_sum": float(loss_sum)}


class _CIFAR10Folder:
    """torchvision's CIFAR10 on a local cifar-10-batches-py folder, without its md5 check
    (a CIFAR-10 rebuilt from the JPEG archive has the same content but other file hashes)."""

    @staticmethod
    def make(root: Path, transform):
        import torchvision

        class CIFAR10(torchvision.datasets.CIFAR10):
            def _check_integrity(self) -> bool:
                return True

            def _load_meta(self) -> None:   # the class names are not needed to train
                self.classes = [str(i) for i in range(10)]
                self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        return CIFAR10(str(root), train=True, download=False, transform=transform)


def measure_official(arch: str, binarizer: Any, *, device: torch.device,
                     batch_size: int | None, warmup: int, steps: int, repeats: int,
                     workers: int, data_dir: str | None, profile: bool = False) -> dict:
    """The loop of the official codes (IR-Net, ReCU, BiPer CIFAR training scripts), written
    here from their structure: per-image PIL transforms in DataLoader workers, fp32, per-step
    host reads of loss and top-1."""
    import torchvision.transforms as T

    from ..api import layers as bnn
    from ..api.surrogate import composed_autograd
    from ..data import cifar10

    stage, recipe = _recipe(arch, binarizer, batch_size)
    mean, std = NORMALIZE[recipe["normalize"] or "cifar"]
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(mean, std)])
    root = cifar10.find(data_dir).parent
    dataset = _CIFAR10Folder.make(root, transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=recipe["batch_size"], shuffle=True,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)
    model = _model(arch, binarizer, device, stage, recipe)
    optimizer = make_optimizer(model, recipe)
    meters = {"loss": 0.0, "top1": 0.0}

    def step(x, y):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with composed_autograd():       # their per-sample torch.var, division and sign
            logits = model(x)
        loss = F.cross_entropy(logits, y)
        extra = bnn.extra_loss(model)       # BiPer's official CIFAR code adds its regulariser
        if extra is not None:
            loss = loss + extra
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        meters["loss"] += loss.item()                                  # host sync, as theirs
        meters["top1"] += (logits.argmax(1) == y).float().mean().item()
    out = time_steps(step, _cycle(lambda e: loader), warmup, steps, device, repeats, profile)
    return {**out, "batch_size": recipe["batch_size"], "stage": stage, "workers": workers}
