"""The binarizer plugin API: the `Binarizer` base class, `register`, lookup and discovery.

Built-ins (the `binarizers` package), third-party packages (entry-point group
`bnnbench.binarizers`) and plain files (`--plugin path.py`) all register through the same
decorator, so a new method is one file written against this module.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import pkgutil
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from .errors import BnnbenchError

ENTRY_POINT_GROUP = "bnnbench.binarizers"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Binarizer(nn.Module):
    """One binary layer's binarizer: how its weights and input activations become ±1.

    A plugin subclasses this, is decorated with `@register("name")` and overrides:
      weight(w)      -> the (scaled) binary weight the conv/linear uses, with its surrogate gradient
      activation(x)  -> the binary input activation, with its surrogate gradient
      output(y)      -> optional post-scale of the layer output (learnable α), default identity
      build(layer)   -> optional per-layer state (nn.Parameters sized by layer.in/out_channels)
      loss(w)        -> optional extra loss term for this layer's latent weight
    Configuration is the class's *annotated* attributes (e.g. `omega0: float = 20.0`): plain data
    that round-trips through JSON. Un-annotated class attributes are metadata. During training
    `self.progress` (0-dim tensor, p = epoch/epochs in [0, 1]) drives schedules without
    recompiling, and `self.stage` names the current stage of `stages`.
    """

    # metadata (not configuration)
    name: str = ""                      # set by @register
    paper: str = ""
    year: int | None = None
    spec: str = ""                      # section of spec/binarizers.md this follows
    stages: tuple = ("binary",)         # training stages, in order; the last one is fully binary
    nonlinearity: str = "hardtanh"      # preferred block nonlinearity: hardtanh | rprelu | identity
    binary: bool = True                 # False: a full-precision reference (counts, published)
    recipes: dict = {}                  # "dataset[/arch]" -> {stage: {recipe key: value}}
    origin: str = "built-in"            # set at registration: built-in, entry point or file

    def __init__(self, **config: Any):
        super().__init__()
        for key, value in self.check_config(config).items():
            setattr(self, key, value)
        self.register_buffer("progress", torch.zeros(()))
        self.stage = self.stages[-1]

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
        """Defaults updated with `config` (checked as `check_params`)."""
        return {**cls.defaults(), **cls.check_params(config)}

    def config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.defaults()}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

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


# --- the registry ------------------------------------------------------------------------
_REGISTRY: dict[str, type[Binarizer]] = {}
_origin = "built-in"
_discovered = False


def register(name: str):
    """Class decorator: register a Binarizer subclass under a lower_snake `name` (unique)."""
    if not isinstance(name, str):
        raise BnnbenchError(f"use @register('name') with a name, not @register on {name!r}")
    if not _NAME.match(name):
        raise BnnbenchError(f"binarizer name '{name}' must be lower_snake_case")

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, Binarizer)):
            raise BnnbenchError(f"@register('{name}'): {cls!r} does not subclass "
                                "bnnbench.Binarizer")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise BnnbenchError(f"binarizer '{name}' is already registered "
                                f"(by {_REGISTRY[name].origin}); choose another name")
        missing = [m for m in ("weight", "activation") if getattr(cls, m) is getattr(Binarizer, m)]
        if missing:
            raise BnnbenchError(f"@register('{name}'): {cls.__name__} does not define "
                                f"{' and '.join(f'{m}()' for m in missing)}; a binarizer must "
                                "define weight(w) and activation(x)")
        cls.name = name
        cls.origin = _origin
        _REGISTRY[name] = cls
        return cls

    return decorate


@contextlib.contextmanager
def _origin_as(origin: str) -> Iterator[None]:
    global _origin
    previous, _origin = _origin, origin
    try:
        yield
    finally:
        _origin = previous


def discover() -> None:
    """Import the built-ins and every installed entry-point plugin (once)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    import binarizers

    for module in pkgutil.iter_modules(binarizers.__path__):
        importlib.import_module(f"binarizers.{module.name}")
    failures = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else "?"
        with _origin_as(f"entry point {ep.value} ({dist})"):
            try:
                obj = ep.load()
                # `name = "pkg.mod:Class"` may point at an undecorated class: register it as `name`
                if isinstance(obj, type) and obj not in _REGISTRY.values():
                    register(ep.name)(obj)
            except Exception as exc:  # load the others first: one broken package hides nothing
                failures.append(f"plugin entry point '{ep.name} = {ep.value}' failed to load: "
                                f"{type(exc).__name__}: {exc}")
    if failures:
        raise BnnbenchError("; ".join(failures) + " (fix or uninstall that package)")


def load_plugin_file(path: str | Path) -> None:
    """Import a plugin file; its `@register` calls add its binarizers."""
    discover()
    path = Path(path).resolve()
    if not path.is_file():
        raise BnnbenchError(f"plugin file not found: {path}")
    module_name = f"bnnbench_plugin_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}"
    loaded = sys.modules.get(module_name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:
        raise BnnbenchError(f"plugin file {path} is not a Python file (expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    with _origin_as(f"file {path}"):
        try:
            spec.loader.exec_module(module)
        except BnnbenchError:
            del sys.modules[module_name]
            raise
        except Exception as exc:
            del sys.modules[module_name]
            raise BnnbenchError(f"plugin file {path} failed to import: "
                                f"{type(exc).__name__}: {exc}") from exc


def load_plugins(files=()) -> None:
    discover()
    for path in files:
        load_plugin_file(path)


def list_binarizers() -> list[str]:
    discover()
    return sorted(_REGISTRY)


def get(name: str) -> type[Binarizer]:
    discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BnnbenchError(f"unknown binarizer '{name}'; known: {', '.join(sorted(_REGISTRY))} "
                            "(a plugin file needs --plugin FILE)") from None


def resolve(spec: Any) -> tuple[type[Binarizer], dict[str, Any]]:
    """Accept a name, a {"name": ..., **params} dict, a class or an instance; return the class
    and its fully resolved configuration (class defaults filled in)."""
    cls, params = given_params(spec)
    return cls, cls.check_config(params)


def given_params(spec: Any) -> tuple[type[Binarizer], dict[str, Any]]:
    """The class and only the parameters `spec` sets (checked), without defaults: what a user
    set, kept apart from what a recipe or the class fills in (see recipe.stage_recipes)."""
    if isinstance(spec, str):
        cls, config = get(spec), {}
    elif isinstance(spec, dict):
        config = dict(spec)
        if "name" not in config:
            raise BnnbenchError(f"binarizer spec {spec!r} needs a 'name' key")
        cls = get(config.pop("name"))
    elif isinstance(spec, Binarizer):
        cls, config = type(spec), spec.config()
    elif isinstance(spec, type) and issubclass(spec, Binarizer):
        cls, config = spec, {}
    else:
        raise BnnbenchError(f"cannot make a binarizer from {spec!r}: give a name, a dict with "
                            "'name', a Binarizer class or instance")
    return cls, cls.check_params(config)


def make(spec: Any) -> Binarizer:
    """A fresh Binarizer instance (one per layer) from anything `resolve` accepts."""
    cls, config = resolve(spec)
    return cls(**config)
