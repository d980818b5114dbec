"""Distillation losses and the teacher's side of a training step.

A stage whose recipe sets `distill` to a registered loss trains against the outputs of a
teacher cell (recipe `teacher`, see bnnbench.teachers) instead of the labels alone. A loss is a
function (student_logits, teacher_logits, labels) -> scalar; a plugin adds one with
`@register_distill_loss("name")` and names it in its recipe, as ReActNet names "distribution".
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import BnnbenchError

NONE = "none"                         # the recipe value of a stage that does not distil
_LOSSES: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {}


def register_distill_loss(name: str):
    """Decorator: register `fn(student_logits, teacher_logits, labels) -> loss` as `name`."""
    def decorate(fn):
        if name == NONE or (name in _LOSSES and _LOSSES[name] is not fn):
            raise BnnbenchError(f"distillation loss '{name}' is already taken; choose another "
                                "name")
        _LOSSES[name] = fn
        return fn
    return decorate


def list_distill_losses() -> list[str]:
    return sorted(_LOSSES)


def check_distill(name: str, where: str) -> str:
    """`name` if it is "none" or a registered loss, else a one-line BnnbenchError."""
    if name != NONE and name not in _LOSSES:
        raise BnnbenchError(f"{where}: recipe 'distill' must be {NONE} or a registered "
                            f"distillation loss ({', '.join(list_distill_losses())}), "
                            f"got {name!r}")
    return name


@register_distill_loss("distribution")
def distribution(student: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
    """ReActNet's distributional loss: the labels are not used, the student matches the
    teacher's softmax,

        L = 1/N Σ_n KL(p_T(x_n) ‖ p_S(x_n)) = 1/N Σ_n Σ_c p_T,c (log p_T,c − log p_S,c),
        p = softmax(logits).

    The official code computes the cross-entropy −Σ_c p_T,c log p_S,c; it differs from L by the
    teacher's entropy, a constant for the student, so both give the same gradients (L is 0 when
    the student reproduces the teacher)."""
    return F.kl_div(F.log_softmax(student, dim=1), F.log_softmax(teacher, dim=1),
                    reduction="batchmean", log_target=True)


class Distiller:
    """One stage's loss against a frozen teacher: the teacher (eval mode, no gradients) sees
    the same augmented batch as the student."""

    def __init__(self, teacher: torch.nn.Module, loss: str):
        self.teacher, self.loss = teacher.eval().requires_grad_(False), _LOSSES[loss]

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
    from .runs import load_run

    teacher_id = recipe["teacher"]
    if teacher_id not in loaded:
        loaded[teacher_id] = load_run(folders[teacher_id], device=str(device))
    return Distiller(loaded[teacher_id], recipe["distill"])
