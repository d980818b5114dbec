"""Distillation losses: ReActNet's distributional loss against a formula computed by hand."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from bnnbench import BnnbenchError
from bnnbench.api import distill
from bnnbench.engine.distiller import Distiller
from bnnbench.engine.optim import make_optimizer
from bnnbench.engine.train import train_step
from bnnbench.experiment.recipe import stage_recipes
from bnnbench.models import build_model


def kl_by_hand(student: np.ndarray, teacher: np.ndarray) -> float:
    """1/N Σ_n Σ_c p_T (log p_T − log p_S), softmaxes written out, in float64."""
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_t, log_s = log_softmax(teacher), log_softmax(student)
    return float((np.exp(log_t) * (log_t - log_s)).sum(axis=1).mean())


def digits_model(binarizer: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet20", binarizer, family="cifar", in_channels=1, num_classes=10,
                       input_size=8)


def test_engine_step_loss_is_the_kl_to_the_teacher_by_hand():
    """train_step with ReActNet's recipe and an fp teacher returns, for one batch, the KL
    divergence from the teacher's softmax to the student's, computed here by hand."""
    from bnnbench.experiment.cell import CellConfig

    recipe = stage_recipes(CellConfig("digits", "resnet20", "reactnet"))[0][1]
    assert recipe["distill"] == "distribution"          # ReActNet's default
    student, teacher = digits_model("reactnet", 0), digits_model("fp", 1)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    with torch.no_grad():
        by_hand_student = copy.deepcopy(student).train()(x).double().numpy()  # train-mode BN
        by_hand_teacher = teacher.eval()(x).double().numpy()
    expected = kl_by_hand(by_hand_student, by_hand_teacher)

    optimizer = make_optimizer(student, recipe)
    loss, _ = train_step(student.train(), student, optimizer, x, y,
                         Distiller(teacher, recipe["distill"]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0.0                                  # two different models
    # the labels play no part: ReActNet trains on the teacher's outputs only
    other = distill.distribution(torch.tensor(by_hand_student), torch.tensor(by_hand_teacher),
                                 (y + 1) % 10)
    assert other.item() == pytest.approx(expected, rel=1e-9)


def test_distribution_gradient_and_zero_at_the_teacher():
    """∂L/∂s = (softmax(s) − softmax(t)) / N, and L = 0 when the student is the teacher."""
    s = torch.randn(5, 10, dtype=torch.float64, requires_grad=True)
    t = torch.randn(5, 10, dtype=torch.float64)
    distill.distribution(s, t, torch.zeros(5, dtype=torch.long)).backward()
    expected = (torch.softmax(s, 1) - torch.softmax(t, 1)).detach() / 5
    assert torch.allclose(s.grad, expected, atol=1e-12)
    assert distill.distribution(t, t, torch.zeros(5)).item() == pytest.approx(0.0, abs=1e-12)


def test_losses_are_a_registry():
    assert "distribution" in distill.list_distill_losses()
    with pytest.raises(BnnbenchError,
                       match=r"'distribution' is already registered \(by built-in\)"):
        distill.register_distill_loss("distribution")(lambda s, t, y: s.sum())
    with pytest.raises(BnnbenchError, match="'none' is already taken"):
        distill.register_distill_loss("none")(lambda s, t, y: s.sum())
    with pytest.raises(BnnbenchError, match=r"recipe: recipe 'distill' must be none or .*"
                                            r"distribution.*got 'kl'"):
        distill.check_distill("kl", "recipe")
