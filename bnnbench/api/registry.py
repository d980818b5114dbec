"""The binarizer registry: `register`, lookup and discovery (the base class: bnnbench.base).

Built-ins (the `bnnbench.binarizers` package), third-party packages (entry-point group
`bnnbench.binarizers`) and plain files (`--plugin path.py`) all register through the same
decorator, so a new method is one file written against this module.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pkgutil
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Iterator

from ..errors import BnnbenchError
from .binarizer import Binarizer, check_declarations

ENTRY_POINT_GROUP = "bnnbench.binarizers"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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
        check_declarations(cls, name)
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
    # the built-ins are plugins written against the facade (bnnbench.__all__): found by name,
    # like entry points, not imported by this lower layer
    builtins = importlib.import_module("bnnbench.binarizers")
    for module in pkgutil.iter_modules(builtins.__path__):
        importlib.import_module(f"{builtins.__name__}.{module.name}")
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
