"""Small digits grid files for the tests that run grids, and snapshots of cell folders."""
from __future__ import annotations

import textwrap
from pathlib import Path


def write_grid(tmp_path: Path, binarizers: str, *, seeds=1, epochs=1, subset=32,
               extra: str = "") -> Path:
    path = tmp_path / "g.toml"
    path.write_text(textwrap.dedent(f"""\
        datasets = ["digits"]
        archs = ["resnet20"]
        binarizers = {binarizers}
        seeds = {seeds}
        epochs = {epochs}
        subset = {subset}
        """) + extra)
    return path


def snapshot(folder: Path) -> dict:
    """Every file's bytes and mtime (to prove a finished cell is left untouched)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}
