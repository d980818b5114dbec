"""Training recipes: defaults, their resolution per stage, the lr schedule and the optimizer.

A recipe is a flat dict per stage. Precedence, lowest first: the dataset's generic defaults,
the binarizer's official recipe (`Binarizer.recipe(dataset, arch)`), the cell's `recipe`, its
`stage_recipes[stage]`, then `epochs` and `budget`. Hyper-parameters live here in one place.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from . import registry
from .errors import BnnbenchError

# Used where a binarizer publishes no recipe for a dataset (e.g. XNOR on CIFAR-10).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    # the common CIFAR-10 1w1a recipe of IR-Net/ReCU: SGD, cosine over 400 epochs; their
    # official CIFAR loaders (and BiPer's) normalise with the ImageNet mean/std
    "cifar10": dict(epochs=400, batch_size=256, lr=0.1, weight_decay=1e-4, normalize="imagenet"),
    # the ReCU/BiPer ImageNet stage-1 recipe
    "imagenet": dict(epochs=200, batch_size=512, lr=0.1, weight_decay=1e-4, warmup_epochs=5,
                     decay="conv_fc"),
    # the tiny offline set: with only ~45 steps an epoch, Adam (as ReActNet trains BNNs) lifts
    # every built-in well above chance within a few epochs where SGD leaves some at chance
    "digits": dict(epochs=8, batch_size=32, optimizer="adam", lr=5e-3, weight_decay=0.0),
}

RECIPE_KEYS: dict[str, Any] = {
    "epochs": 1,                 # epochs of this stage
    "batch_size": 256,
    "optimizer": "sgd",          # sgd (momentum) | adam
    "lr": 0.1,                   # peak learning rate
    "momentum": 0.9,             # SGD momentum (Adam: beta1)
    "weight_decay": 0.0,
    "decay": "all",              # which parameters get weight decay: all | conv_fc | conv
    "warmup_epochs": 0,          # linear warm-up lr·(e+1)/W, as the official BiPer/ReCU code
    "schedule": "cosine",        # cosine | linear (to 0) | constant
    "normalize": None,           # input normalisation: cifar | imagenet | None = dataset's own
    "eval_batch_size": 1024,     # evaluation is batch-size independent: use a large one
    "binarizer": {},             # this stage's binarizer parameters (e.g. BiPer's reg_tau)
}
_CHOICES = {"optimizer": ("sgd", "adam"), "decay": ("all", "conv_fc", "conv"),
            "schedule": ("cosine", "linear", "constant"),
            "normalize": (None, "cifar", "imagenet")}


def key_type(key: str) -> type:
    """The Python type a recipe key takes (`normalize` names a normalisation)."""
    default = RECIPE_KEYS[key]
    return str if default is None else type(default)


def check_recipe(overrides: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate recipe keys, types and choices; `where` names the source in the error."""
    out = {}
    for key, value in overrides.items():
        if key not in RECIPE_KEYS:
            raise BnnbenchError(f"{where}: unknown recipe key '{key}' "
                                f"(known: {', '.join(RECIPE_KEYS)})")
        kind = key_type(key)
        if key in _CHOICES and value not in _CHOICES[key]:
            raise BnnbenchError(f"{where}: recipe '{key}' must be one of "
                                f"{', '.join(map(str, _CHOICES[key]))}, got {value!r}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if key not in _CHOICES and not isinstance(value, kind):
            raise BnnbenchError(f"{where}: recipe '{key}' must be {kind.__name__}, "
                                f"got {value!r}")
        out[key] = value
    return out


def stage_recipes(cfg) -> list[tuple[str, dict[str, Any]]]:
    """[(stage, recipe)] in training order for a CellConfig, fully resolved."""
    cls, _ = registry.resolve(cfg.binarizer)
    official = cls.recipe(cfg.dataset, cfg.arch)
    explicit = dict(cfg.binarizer) if isinstance(cfg.binarizer, dict) else {}
    explicit.pop("name", None)
    unknown = set(cfg.stage_recipes) - set(cls.stages)
    if unknown:
        raise BnnbenchError(f"stage_recipes names stages {sorted(unknown)} that binarizer "
                            f"'{cls.name}' does not have (its stages: {', '.join(cls.stages)})")
    out = []
    for stage in cls.stages:
        recipe = dict(RECIPE_KEYS)
        for source, layer in ((f"defaults for {cfg.dataset}", DATASET_DEFAULTS.get(cfg.dataset, {})),
                              (f"{cls.name}'s recipe", official[stage]),
                              ("recipe", cfg.recipe),
                              (f"stage_recipes.{stage}", cfg.stage_recipes.get(stage, {}))):
            recipe.update(check_recipe(layer, source))
        if cfg.epochs is not None:
            recipe["epochs"] = int(cfg.epochs)
        recipe["epochs"] = max(1, math.ceil(recipe["epochs"] * cfg.budget))
        # a shortened stage keeps its warm-up only while it fits in the first half
        recipe["warmup_epochs"] = min(recipe["warmup_epochs"], recipe["epochs"] // 2)
        # parameters the user set on the binarizer win over a recipe's per-stage values
        recipe["binarizer"] = cls.check_config({**recipe["binarizer"], **explicit})
        out.append((stage, recipe))
    return out


def lr_at(recipe: dict[str, Any], epoch: int) -> float:
    """The learning rate of 0-based `epoch`: linear warm-up, then the schedule.

    Cosine with warm-up W follows the official BiPer/ReCU loop: lr·(e+1)/W for e < W, then a
    cosine whose step count starts at epoch W − 1 (T_max = epochs − W + 1).
    """
    lr, epochs, warm = recipe["lr"], recipe["epochs"], recipe["warmup_epochs"]
    if epoch < warm:
        return lr * (epoch + 1) / warm
    if recipe["schedule"] == "constant":
        return lr
    if recipe["schedule"] == "linear":
        return lr * (1.0 - epoch / epochs)
    shift = max(warm - 1, 0)
    return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - shift) / max(epochs - shift, 1)))


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
