"""Registrations made by a test vanish after it, in every registry (binarizers, architectures,
datasets, distillation losses)."""
from __future__ import annotations

import bnnbench.data  # noqa: F401  (importing creates the registry of datasets)
import bnnbench.models  # noqa: F401  (and that of architectures)
from bnnbench.api import registry


def isolate(monkeypatch) -> None:
    """Discover first (the built-ins and installed plugins stay), then let the test register
    into copies that monkeypatch puts back."""
    registry.discover()
    for kind in registry._REGISTRIES:
        monkeypatch.setattr(kind, "_entries", dict(kind._entries))


def forget(kind: registry.Registry, name: str) -> None:
    """Unregister `name`, as a new session that has not loaded its plugin would have it."""
    del kind._entries[name]
