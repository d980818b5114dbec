"""The `Binarizer` base class: everything a plugin may override or declare, documented in one place.

Kept apart from the registry (bnnbench.api.registry: `register`, lookup, discovery) so that this
file reads as the plugin API's reference.
"""
from __future__ import annotations

import math
import re
from typing import Any, Iterable

import torch
from torch import Tensor, nn

from ..errors import BnnbenchError

LAYOUTS = ("conv_bn_act", "conv_act_bn")
PUBLISHED_KEYS = {"top1": float, "dataset": str, "arch": str, "source": str,     # required
                  "top5": float, "variant": str, "note": str}                    # optional
_PUBLISHED_REQUIRED = ("top1", "dataset", "arch", "source")


class Binarizer(nn.Module):
    """One binary layer's binarizer: how its weights and input activations become ±1.

    A plugin subclasses this, is decorated with `@register("name")` and overrides:
      weight(w)      -> the (scaled) binary weight the conv/linear uses, with its surrogate gradient
      activation(x)  -> the binary input activation, with its surrogate gradient
      output(y)      -> optional post-scale of the layer output (learnable α), default identity
      build(layer)   -> optional per-layer state (nn.Parameters sized by layer.in/out_channels)
      init_weight(w) -> optional in-place initialisation of the layer's latent weight
      loss(w)        -> optional extra loss term for this layer's latent weight
      schedule()     -> the values of its schedules at the current p, {name: 0-dim tensor}
      metrics(w)     -> its own quantities {key: scalar}, recorded every epoch as
                        `binarizer/<key>` (mean over the binary layers) in metrics.jsonl, Tune's
                        reports and TensorBoard, the final epoch's in result.json, their mean over
                        seeds in the leaderboard's `binarizer/<key>_mean`; a key is letters,
                        digits and _, not starting with a digit (checked as each stage starts,
                        where it is called once more); default: the schedule's values
      validate(config) (classmethod) -> raise BnnbenchError (or ValueError) for a bad parameter
      report_figures(kit) (classmethod) -> optional figures of its own quantities, as
                        (file stem, matplotlib Figure) pairs the report saves as <stem>.png/.svg;
                        called by each report whose run stores hold a cell of this binarizer.
                        `kit` (bnnbench.report.figures.FigureKit) holds the report's DataFrames:
                        kit.cells (a row per cell with its final `binarizer/<key>` values and
                        its final stage's parameters, `final_stage_params`), kit.board (the
                        leaderboard), kit.metrics (the metrics.jsonl rows), and the report's
                        look: kit.new_figure(width, height), kit.entry_label(rows),
                        kit.max_width_in (BiPer's QE figures are drawn so)
    Configuration is the class's *annotated* attributes (e.g. `omega0: float = 20.0`): plain data
    that round-trips through JSON. Un-annotated class attributes are metadata (below).

    Training progress: `self.progress` is a 0-dim tensor (filled in place: no recompile) holding
    p = e / E, where E is the number of epochs of the *current stage* after `--budget`/`epochs`
    shortened it (a stage's `start_epoch` shifts both: p = (start_epoch + e) / (start_epoch + E)),
    e the 0-based epoch being trained. It is set once per epoch, before its first step, so it
    takes the values 0, 1/E, ..., (E−1)/E and is never 1; it restarts at 0 in every stage, and is
    0 outside training. With `progress_per_step = True` it advances every optimiser step instead:
    p = (e + i/S) / E for step i of the S steps of an epoch.
    `self.stage` names the current stage of `stages`; it is in the state_dict.
    """

    # metadata (not configuration); a subclass sets them without annotations
    name: str = ""                      # set by @register
    paper: str = ""
    year: int | None = None
    spec: str = ""                      # section of spec/binarizers.md this follows
    stages: tuple = ("binary",)         # training stages, in order; the last one is fully binary
    nonlinearity: str = "hardtanh"      # preferred block nonlinearity: hardtanh | rprelu | identity
    layout: str = "conv_bn_act"         # block order: conv_bn_act | conv_act_bn (models/blocks.py)
    classifier_bn: bool | None = None   # BatchNorm1d before the classifier; None: the backbone's
    progress_per_step: bool = False     # True: p advances every optimiser step, not every epoch
    binary: bool = True                 # False: a full-precision reference (counts, published)
    recipes: dict = {}                  # "dataset[/arch]" -> {stage: {recipe key: value}}
    # published numbers, merged with results/reference/*.csv in the leaderboard: dicts with
    # top1, dataset, arch, source and optionally top5, variant, note (see PUBLISHED_KEYS)
    published: tuple = ()
    # SHA-256s of earlier versions of the file that defines the class, whose edits changed
    # neither what it trains nor what it records (documentation, code moved out of the file):
    # cells trained with them stay current instead of stale. Name one only for such an edit.
    compatible_code: tuple = ()
    origin: str = "built-in"            # set at registration: built-in, entry point or file

    def __init__(self, **config: Any):
        super().__init__()
        for key, value in self.check_config(config).items():
            setattr(self, key, value)
        self.register_buffer("progress", torch.zeros(()))
        self.stage = self.stages[-1]
        self.register_load_state_dict_pre_hook(_stage_of_older_records)

    # --- configuration -------------------------------------------------------------------
    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The configuration keys with their default values."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if klass is Binarizer or not (isinstance(klass, type) and issubclass(klass, Binarizer)):
                continue
            for key in klass.__dict__.get("__annotations__", {}):
                if not key.startswith("_"):
                    out[key] = getattr(cls, key)
        return out

    @classmethod
    def check_params(cls, config: dict[str, Any]) -> dict[str, Any]:
        """`config`'s own keys, checked and coerced (no defaults added); an unknown key or a
        wrong type is a BnnbenchError."""
        defaults = cls.defaults()
        checked = {}
        for key, value in config.items():
            if key not in defaults:
                known = ", ".join(defaults) or "none"
                raise BnnbenchError(
                    f"binarizer '{cls.name}' has no parameter '{key}' (its parameters: {known})")
            checked[key] = _coerce(cls.name, key, value, defaults[key])
        return checked

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Defaults updated with `config` (checked as `check_params`, then by `validate`)."""
        full = {**cls.defaults(), **cls.check_params(config)}
        try:
            cls.validate(full)
        except ValueError as exc:
            raise BnnbenchError(f"binarizer '{cls.name}': {exc}") from None
        return full

    @classmethod
    def validate(cls, config: dict[str, Any]) -> None:
        """Check the values of a complete configuration (types are already checked): raise
        BnnbenchError or ValueError with one line naming the parameter and the allowed range.
        Runs wherever a configuration is made: grid files, CLI options, recipes, Python."""

    def config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.defaults()}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    def get_extra_state(self) -> dict[str, Any]:
        return {"stage": self.stage}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("stage") not in self.stages:
            raise BnnbenchError(f"a state_dict of binarizer '{self.name}' names stage "
                                f"{state.get('stage')!r}, not one of {', '.join(self.stages)}")
        self.stage = state["stage"]

    # --- the method ----------------------------------------------------------------------
    def build(self, layer: nn.Module) -> None:
        """Create per-layer state; `layer` has in_channels and out_channels."""

    def init_weight(self, w: Tensor) -> None:
        """Initialise the layer's latent weight in place, if the method prescribes it."""

    def weight(self, w: Tensor) -> Tensor:
        raise NotImplementedError

    def activation(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def output(self, y: Tensor) -> Tensor:
        return y

    def loss(self, w: Tensor) -> Tensor | None:
        return None

    def schedule(self) -> dict[str, Tensor]:
        """The method's schedules at the current p (`self.progress`): {name: value}. Read one at
        another p with `b.progress.fill_(p); b.schedule()`."""
        return {}

    def metrics(self, w: Tensor) -> dict[str, float]:
        """Scalars for metrics.jsonl, given this layer's latent weight; each epoch's row holds
        their mean over the binary layers as `binarizer/<name>`."""
        return {key: float(value) for key, value in self.schedule().items()}

    @classmethod
    def report_figures(cls, kit: Any) -> Iterable[tuple[str, Any]]:
        """(file stem, matplotlib Figure) pairs of this binarizer's own figures, which the
        report saves beside its others (see the class docstring for `kit`); none by default."""
        return ()

    @classmethod
    def recipe(cls, dataset: str, arch: str | None = None) -> dict[str, dict[str, Any]]:
        """The official recipe per stage: the entries 'default', 'dataset' and 'dataset/arch'
        merged in that order (a more specific entry overrides single keys, its `binarizer`
        table key by key), so 'cifar10/vgg_small' needs to state only what differs."""
        out: dict[str, dict[str, Any]] = {stage: {} for stage in cls.stages}
        for key in ("default", dataset, f"{dataset}/{arch}"):
            for stage, values in cls.recipes.get(key, {}).items():
                merged = out.setdefault(stage, {})
                params = {**merged.get("binarizer", {}), **values.get("binarizer", {})}
                merged.update(values)
                if params:
                    merged["binarizer"] = params
        return out


def _stage_of_older_records(module: Binarizer, state_dict: dict, prefix: str, *args) -> None:
    """A state_dict saved before the stage was in it (checkpoints of bnnbench ≤ 0.1.0 runs)
    loads strictly and keeps the current stage, which training and load_run then set."""
    state_dict.setdefault(prefix + "_extra_state", {"stage": module.stage})


def check_declarations(cls: type[Binarizer], name: str) -> None:
    """The metadata a plugin declares, checked at registration: its layout, published rows and
    compatible code digests."""
    for digest in cls.compatible_code:
        if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise BnnbenchError(f"binarizer '{name}': compatible_code holds SHA-256 hex digests "
                                f"(64 characters 0-9a-f), got {digest!r}")
    if cls.layout not in LAYOUTS:
        raise BnnbenchError(f"binarizer '{name}' asks for layout '{cls.layout}'; set it to one "
                            f"of: {', '.join(LAYOUTS)}")
    for row in cls.published:
        if not isinstance(row, dict):
            raise BnnbenchError(f"binarizer '{name}': each published entry is a dict, got {row!r}")
        unknown = set(row) - set(PUBLISHED_KEYS)
        missing = [k for k in _PUBLISHED_REQUIRED if k not in row]
        if unknown or missing:
            raise BnnbenchError(f"binarizer '{name}': published entry {row!r} "
                                + (f"has unknown keys {sorted(unknown)}" if unknown else
                                   f"lacks {', '.join(missing)}")
                                + f" (keys: {', '.join(PUBLISHED_KEYS)})")
        for key, value in row.items():
            _coerce(name, f"published {key}", value, PUBLISHED_KEYS[key]())


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise BnnbenchError(f"binarizer '{name}' parameter '{key}' must be a finite number, "
                            f"got {value!r}")
    if kind is tuple and isinstance(value, list):  # a tuple comes back from JSON as a list
        return tuple(value)
    if default is None or isinstance(value, kind):
        return value
    raise BnnbenchError(f"binarizer '{name}' parameter '{key}' must be {kind.__name__}, "
                        f"got {value!r}")
