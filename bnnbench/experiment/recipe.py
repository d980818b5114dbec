"""Training recipes: defaults, their resolution per stage, the lr schedule and the optimizer.

A recipe is a flat dict per stage. Precedence, lowest first: the dataset's generic defaults,
the binarizer's official recipe (`Binarizer.recipe(dataset, arch)`), the cell's `recipe`, its
`epochs`, its `stage_recipes[stage]` (the most specific wins); then `total_epochs` splits one
budget over the stages in the ratio of those epochs, and `budget` scales the epochs. The
stage's binarizer parameters follow the same rule: the class defaults, then the
official recipe's values for that stage, then what the user set (the cell's binarizer spec,
then its recipe's and stage recipe's `binarizer` tables).
Only values the user set win over the official recipe: the cell keeps them apart from the
defaults (`registry.given_params`). Hyper-parameters live here in one place.

Total budget (`total_epochs`): every binarizer gets the same epochs however many stages it
trains, e.g. 12 total epochs are 8 + 4 for BiPer's 600 + 299-epoch CIFAR-10 recipe and 6 + 6
for ReActNet's 256 + 256 (largest remainders, at least one epoch per stage).

Shortened stages (`epochs`, `total_epochs`, `budget`): the epochs are scaled first (at least
1), then a warm-up is kept only while it fits in the first half of the stage's schedule, so
e.g. BiPer's 5-epoch warm-up survives a 10-epoch stage but becomes 2 epochs in a 4-epoch one.
"""
from __future__ import annotations

import math
from typing import Any

from ..api import distill, registry
from ..errors import BnnbenchError
from . import teachers

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
    # the schedule position of the stage's first epoch: the stage trains `epochs` epochs at
    # positions start_epoch … start_epoch+epochs−1 of a schedule start_epoch+epochs long
    # (BiPer's official CIFAR stage-2 loop starts at 1: 299 epochs of a 300-epoch schedule)
    "start_epoch": 0,
    # stage k > 0 starts from stage k−1's final weights, or (official BiPer/ReCU stage 2) from
    # its epoch of best test top-1: a choice made on the test set, flagged in reports
    "init_from": "final",
    "schedule": "cosine",        # cosine | linear (to 0) | constant
    "normalize": None,           # input normalisation: cifar | imagenet | None = dataset's own
    "eval_batch_size": 1024,     # evaluation is batch-size independent: use a large one
    "binarizer": {},             # this stage's binarizer parameters (e.g. BiPer's reg_tau)
    # knowledge distillation: a loss of bnnbench.distill ("distribution": ReActNet's), or none
    "distill": "none",
    # whom it distils from: a table of cell fields (bnnbench.teachers; {} = fp of the same
    # arch); resolved into the teacher cell's id (experiment.resolve)
    "teacher": {},
}
_MINIMUM = {"epochs": 1, "batch_size": 1, "eval_batch_size": 1, "warmup_epochs": 0,
            "start_epoch": 0, "lr": 0.0, "momentum": 0.0, "weight_decay": 0.0}
_CHOICES = {"optimizer": ("sgd", "adam"), "decay": ("all", "conv_fc", "conv"),
            "schedule": ("cosine", "linear", "constant"), "init_from": ("final", "best"),
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
        if key == "teacher":
            out[key] = teachers.check_spec(value, where)
            continue
        if key == "distill" and isinstance(value, str):
            distill.check_distill(value, where)
        kind = key_type(key)
        if key in _CHOICES and value not in _CHOICES[key]:
            raise BnnbenchError(f"{where}: recipe '{key}' must be one of "
                                f"{', '.join(map(str, _CHOICES[key]))}, got {value!r}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if key not in _CHOICES and (not isinstance(value, kind)
                                    or kind is int and isinstance(value, bool)):
            raise BnnbenchError(f"{where}: recipe '{key}' must be {kind.__name__}, "
                                f"got {value!r}")
        if kind is float and not math.isfinite(value):
            raise BnnbenchError(f"{where}: recipe '{key}' must be a finite number, got {value!r}")
        if key in _MINIMUM and value < _MINIMUM[key]:
            raise BnnbenchError(f"{where}: recipe '{key}' must be >= {_MINIMUM[key]}, "
                                f"got {value!r}")
        out[key] = value
    return out


def stage_recipes(cfg) -> list[tuple[str, dict[str, Any]]]:
    """[(stage, recipe)] in training order for a CellConfig, merged and checked: what trains,
    but for a distilling stage's `teacher`, still its table (experiment.resolve turns it into
    the teacher cell's id); a stage that does not distil has neither `teacher` nor `distill`,
    so such ids stay as they were before distillation existed."""
    cls, given = registry.given_params(cfg.binarizer)
    official = cls.recipe(cfg.dataset, cfg.arch)
    unknown = set(cfg.stage_recipes) - set(cls.stages)
    if unknown:
        raise BnnbenchError(f"stage_recipes names stages {sorted(unknown)} that binarizer "
                            f"'{cls.name}' does not have (its stages: {', '.join(cls.stages)})")
    out = []
    for stage in cls.stages:
        recipe, params = dict(RECIPE_KEYS), {}
        for source, layer in ((f"defaults for {cfg.dataset}", DATASET_DEFAULTS.get(cfg.dataset, {})),
                              (f"{cls.name}'s recipe", official[stage]),
                              ("the binarizer", {"binarizer": given}),
                              ("recipe", cfg.recipe),
                              ("epochs", {} if cfg.epochs is None else {"epochs": cfg.epochs}),
                              (f"stage_recipes.{stage}", cfg.stage_recipes.get(stage, {}))):
            checked = check_recipe(layer, source)
            params.update(cls.check_params(checked.pop("binarizer", {})))
            recipe.update(checked)
        recipe["binarizer"] = cls.check_config(params)
        if recipe["distill"] == distill.NONE:
            del recipe["teacher"], recipe["distill"]
        out.append((stage, recipe))
    if cfg.total_epochs is not None:
        split_total(out, cfg.total_epochs)
    for _, recipe in out:
        _shorten(recipe, cfg.budget)
    return out


def split_total(stages: list[tuple[str, dict[str, Any]]], total: int) -> None:
    """Set the stages' epochs to `total` in all, in the ratio of their current epochs
    (largest remainders, earlier stages first on equal remainders; at least 1 each)."""
    if total < len(stages):
        raise BnnbenchError(f"total_epochs {total} is less than the {len(stages)} stages of "
                            "this binarizer (at least one epoch each): raise total_epochs")
    weights = [recipe["epochs"] for _, recipe in stages]
    spare = total - len(stages)       # after the one epoch every stage gets
    shares = [spare * w / sum(weights) for w in weights]
    epochs = [1 + math.floor(s) for s in shares]
    by_remainder = sorted(range(len(stages)), key=lambda i: (math.floor(shares[i]) - shares[i], i))
    for i in by_remainder[:total - sum(epochs)]:
        epochs[i] += 1
    for (_, recipe), n in zip(stages, epochs):
        recipe["epochs"] = n


def _shorten(recipe: dict[str, Any], budget: float) -> None:
    """Apply `budget`; a warm-up stays only while it fits in the first half of the stage's
    schedule (see the module docstring)."""
    recipe["epochs"] = max(1, math.ceil(recipe["epochs"] * budget))
    length = recipe["epochs"] + recipe["start_epoch"]
    recipe["warmup_epochs"] = min(recipe["warmup_epochs"], length // 2)


def schedule_position(recipe: dict[str, Any], epoch: int) -> tuple[int, int]:
    """(position, length) in the stage's schedule of its 0-based trained `epoch`."""
    return epoch + recipe["start_epoch"], recipe["epochs"] + recipe["start_epoch"]


def lr_at(recipe: dict[str, Any], epoch: int) -> float:
    """The learning rate of the stage's 0-based trained `epoch`: linear warm-up, then the
    schedule, both over schedule positions (`start_epoch` shifts them).

    Cosine with warm-up W follows the official BiPer/ReCU loop: lr·(e+1)/W for e < W, then a
    cosine whose step count starts at epoch W − 1 (T_max = epochs − W + 1).
    """
    lr, warm = recipe["lr"], recipe["warmup_epochs"]
    epoch, epochs = schedule_position(recipe, epoch)
    if epoch < warm:
        return lr * (epoch + 1) / warm
    if recipe["schedule"] == "constant":
        return lr
    if recipe["schedule"] == "linear":
        return lr * (1.0 - epoch / epochs)
    shift = max(warm - 1, 0)
    return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - shift) / max(epochs - shift, 1)))
