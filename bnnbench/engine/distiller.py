"""The teacher's side of a training step: a frozen teacher model and a stage's distillation
loss (the losses: bnnbench.api.distill)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..api.distill import LOSSES, NONE
from .evaluate import load_run


class Distiller:
    """One stage's loss against a frozen teacher: the teacher (eval mode, no gradients) sees
    the same augmented batch as the student."""

    def __init__(self, teacher: torch.nn.Module, loss: str):
        self.teacher, self.loss = teacher.eval().requires_grad_(False), LOSSES.get(loss)

    def __call__(self, x: Tensor, logits: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.teacher(x).float()
        return self.loss(logits, target, y)


def stage_distiller(recipe: dict, folders: dict[str, Path], device: torch.device,
                    loaded: dict[str, torch.nn.Module]) -> Distiller | None:
    """The Distiller of a resolved stage recipe (None when it does not distil); its teacher
    model comes from the finished run folder `folders[teacher id]`, loaded once into
    `loaded`."""
    if recipe.get("distill", NONE) == NONE:
        return None
    teacher_id = recipe["teacher"]
    if teacher_id not in loaded:
        loaded[teacher_id] = load_run(folders[teacher_id], device=str(device))
    return Distiller(loaded[teacher_id], recipe["distill"])
