"""Distillation losses: the registry a plugin adds one to, and ReActNet's.

A stage whose recipe sets `distill` to a registered loss trains against the outputs of a
teacher cell (recipe `teacher`, see bnnbench.experiment.teachers) instead of the labels alone
(the training side: bnnbench.engine.distiller). A loss is a
function (student_logits, teacher_logits, labels) -> scalar; a plugin adds one with
`@register_distill_loss("name")` (or an entry point in the group `bnnbench.distill_losses`) and
names it in its recipe, as ReActNet names "distribution".
"""
from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor

from ..errors import BnnbenchError
from .registry import Registry

NONE = "none"                         # the recipe value of a stage that does not distil


def _not_none(name: str, fn: Callable) -> None:
    """"none" is what a recipe says to train without a teacher: no loss may take it."""
    if name == NONE:
        raise BnnbenchError(f"distillation loss '{name}' is already taken; choose another name")


LOSSES: Registry[Callable[[Tensor, Tensor, Tensor], Tensor]] = Registry(
    "distillation loss", "bnnbench.distill_losses", check=_not_none)


def register_distill_loss(name: str):
    """Decorator: register `fn(student_logits, teacher_logits, labels) -> loss` as `name`."""
    def decorate(fn):
        return LOSSES.add(name, fn)
    return decorate


def list_distill_losses() -> list[str]:
    return LOSSES.names()


def check_distill(name: str, where: str) -> str:
    """`name` if it is "none" or a registered loss, else a one-line BnnbenchError."""
    if name != NONE and name not in LOSSES:
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
