"""A stage's optimiser as its recipe says: which parameters decay, SGD or Adam."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _decayed(name: str, param: nn.Parameter, rule: str) -> bool:
    if rule == "all":
        return True
    if rule == "conv":           # ReActNet: only the conv kernels
        return param.dim() == 4
    # conv_fc (ImageNet BiPer/ReCU): conv and fc weights and the binary layers' scales,
    # not BatchNorm, biases or the downsample shortcut
    return "downsample" not in name and (param.dim() > 1 or ".binarizer." in name)


def make_optimizer(model: nn.Module, recipe: dict[str, Any]) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if _decayed(name, param, recipe["decay"]) else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": recipe["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    if recipe["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=recipe["lr"], betas=(recipe["momentum"], 0.999))
    return torch.optim.SGD(groups, lr=recipe["lr"], momentum=recipe["momentum"])
