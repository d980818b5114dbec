"""Where datasets live: one rule for every dataset, so users learn it once.

Places are tried in order: the `data_dir` argument, the dataset's environment variable(s),
then a per-user cache folder ($XDG_CACHE_HOME/bnnbench/data, default ~/.cache/bnnbench/data).
The first place that holds the dataset wins; if none does, the error lists every place tried.
"""
from __future__ import annotations

import os
from pathlib import Path


def default_cache() -> Path:
    """The per-user data folder; honours XDG_CACHE_HOME like other well-behaved tools."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bnnbench" / "data"


def candidates(data_dir: str | os.PathLike | None, env_vars: tuple[str, ...],
               cache_sub: str = "") -> list[tuple[Path, str]]:
    """The places to look, in order, each with a short note on where it came from."""
    places: list[tuple[Path, str]] = []
    if data_dir is not None:
        places.append((Path(data_dir).expanduser(), "data_dir argument"))
    for var in env_vars:
        if os.environ.get(var):
            places.append((Path(os.environ[var]).expanduser(), f"${var}"))
    places.append((default_cache() / cache_sub if cache_sub else default_cache(),
                   "default cache"))
    return places


def describe(tried: list[tuple[Path, str]]) -> str:
    """One line listing the places tried, for an error message."""
    return "; ".join(f"{path} ({why})" for path, why in tried)
