"""The registries: one mechanism for binarizers (here), architectures (bnnbench.models.archs),
datasets (bnnbench.data.datasets) and distillation losses (bnnbench.api.distill).

Each kind is a `Registry`: a decorator registers a lower_snake name; a duplicate name is an
error naming who registered it (a silent overwrite makes benchmark results ambiguous); listing
is sorted; an unknown name is one line listing the known ones and the closest. Built-ins,
third-party packages (one entry-point group per kind: bnnbench.binarizers, bnnbench.archs,
bnnbench.datasets, bnnbench.distill_losses) and plain files (`--plugin path.py`, which may
register any kind) all register through the same decorators, so a new method, backbone or
dataset is one file written against `bnnbench`; each entry records where it came from.
"""
from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import pkgutil
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, TypeVar

from ..errors import BnnbenchError
from .binarizer import Binarizer, check_declarations

T = TypeVar("T")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_origin = "built-in"                   # what registers now: built-in, entry point or file
_discovered: set[str] = set()          # the entry-point groups loaded so far
_REGISTRIES: list[Registry] = []


class Registry(Generic[T]):
    """The entries of one kind by name. `kind` names it in errors; `group` is its entry-point
    group; `builtins`, a package whose modules are imported before the group is loaded (for
    kinds whose built-ins are not imported with the registry); `check(name, entry)` refuses
    a bad entry in one line; `adopt(name, obj)` registers what an entry point names when
    loading it registered nothing."""

    def __init__(self, kind: str, group: str, *, builtins: str | None = None,
                 check: Callable[[str, T], None] | None = None,
                 adopt: Callable[[str, Any], None] | None = None):
        self.kind, self.group, self.builtins = kind, group, builtins
        self._check, self._adopt = check, adopt
        self._entries: dict[str, tuple[T, str]] = {}     # name -> (entry, origin)
        _REGISTRIES.append(self)

    def check_name(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise BnnbenchError(f"{self.kind} name '{name}' must be lower_snake_case")

    def add(self, name: str, entry: T) -> T:
        """Register `entry` as `name`, recording the origin; the same entry again is kept."""
        self.check_name(name)
        if name in self._entries:
            if self._entries[name][0] == entry:
                return entry
            raise BnnbenchError(f"{self.kind} '{name}' is already registered "
                                f"(by {self._entries[name][1]}); choose another name")
        if self._check is not None:
            self._check(name, entry)
        self._entries[name] = (entry, _origin)
        return entry

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self.discover()
        return name in self._entries

    def get(self, name: str) -> T:
        self.discover()
        if name not in self._entries:
            raise self._unknown(name)
        return self._entries[name][0]

    def origin(self, name: str) -> str:
        """Where the registered `name` came from: built-in, entry point <value> (<dist>) or
        file <path> (no discovery: registering asks it)."""
        if name not in self._entries:
            raise self._unknown(name)
        return self._entries[name][1]

    def _unknown(self, name: str) -> BnnbenchError:
        known = sorted(self._entries)
        close = difflib.get_close_matches(str(name), known, n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        return BnnbenchError(f"unknown {self.kind} '{name}'; known: {', '.join(known)}{guess} "
                             "(a plugin file needs --plugin FILE)")

    def discover(self) -> None:
        """Import the built-ins, then every installed package of the entry-point group (once
        per group; a broken package is reported after the others have loaded)."""
        if self.group in _discovered:
            return
        _discovered.add(self.group)
        if self.builtins:
            _import_package(self.builtins)
        failures = []
        for ep in entry_points(group=self.group):
            dist = ep.dist.name if ep.dist else "?"
            with _origin_as(f"entry point {ep.value} ({dist})"):
                try:
                    obj = ep.load()
                    if self._adopt is not None:
                        self._adopt(ep.name, obj)
                except Exception as exc:  # load the others first: one broken package hides nothing
                    failures.append(f"plugin entry point '{ep.name} = {ep.value}' failed to "
                                    f"load: {type(exc).__name__}: {exc}")
        if failures:
            raise BnnbenchError("; ".join(failures) + " (fix or uninstall that package)")


def _import_package(name: str) -> None:
    """Import the package `name` and each of its modules (found by name, like entry points:
    the built-in binarizers are plugins written against the facade, above this layer)."""
    package = importlib.import_module(name)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{name}.{module.name}")


@contextlib.contextmanager
def _origin_as(origin: str) -> Iterator[None]:
    global _origin
    previous, _origin = _origin, origin
    try:
        yield
    finally:
        _origin = previous


def discover() -> None:
    """Every registry's built-ins and entry-point plugins (once)."""
    for kind in list(_REGISTRIES):
        kind.discover()


def load_plugin_file(path: str | Path) -> None:
    """Import a plugin file; its decorators (@register, @register_arch, @register_dataset,
    @register_distill_loss) add what it defines."""
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


# --- the binarizers ----------------------------------------------------------------------
def _check_binarizer(name: str, cls: type[Binarizer]) -> None:
    missing = [m for m in ("weight", "activation") if getattr(cls, m) is getattr(Binarizer, m)]
    if missing:
        raise BnnbenchError(f"@register('{name}'): {cls.__name__} does not define "
                            f"{' and '.join(f'{m}()' for m in missing)}; a binarizer must "
                            "define weight(w) and activation(x)")
    check_declarations(cls, name)


def _adopt_class(name: str, obj: Any) -> None:
    """`name = "pkg.mod:Class"` may point at an undecorated class: register it as `name`."""
    if isinstance(obj, type) and all(obj is not cls for cls, _ in BINARIZERS._entries.values()):
        register(name)(obj)


BINARIZERS: Registry[type[Binarizer]] = Registry(
    "binarizer", "bnnbench.binarizers", builtins="bnnbench.binarizers", check=_check_binarizer,
    adopt=_adopt_class)


def register(name: str):
    """Class decorator: register a Binarizer subclass under a lower_snake `name` (unique)."""
    if not isinstance(name, str):
        raise BnnbenchError(f"use @register('name') with a name, not @register on {name!r}")
    BINARIZERS.check_name(name)

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, Binarizer)):
            raise BnnbenchError(f"@register('{name}'): {cls!r} does not subclass "
                                "bnnbench.Binarizer")
        BINARIZERS.add(name, cls)
        cls.name, cls.origin = name, BINARIZERS.origin(name)
        return cls

    return decorate


def list_binarizers() -> list[str]:
    return BINARIZERS.names()


def get(name: str) -> type[Binarizer]:
    return BINARIZERS.get(name)


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
