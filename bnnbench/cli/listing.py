"""What `bnnbench list --archs | --datasets | --grids` prints: one line per architecture,
dataset and shipped grid, each with a short description read from where it is defined (the
builder's or loader's docstring, the grid file's `description`)."""
from __future__ import annotations

import inspect
import re

import torch

from .. import data, models
from ..api import layers as bnn
from ..experiment import grid

Table = tuple[tuple[str, ...], list[tuple[str, ...]]]   # (column names, rows)


def first_clause(doc: str | None) -> str:
    """The first line of a docstring up to its first ':', ',' or '(' ("CIFAR ResNet-18")."""
    line = inspect.cleandoc(doc or "").split("\n", 1)[0]
    return re.split(r"[:,(]", line, maxsplit=1)[0].strip()


def archs() -> Table:
    """Every family's architectures: variant, parameters (binary ones apart), description."""
    rows = []
    for family in models.list_families():
        for arch in models.list_archs(family):
            with torch.device("meta"):   # counts only: no memory, no compute
                model = models.build_model(arch, "sign_ste", family=family)
            params = sum(p.numel() for p in model.parameters())
            binary = sum(m.weight.numel() for m in bnn.binary_layers(model))
            rows.append((family, arch, model.variant, f"{params:,}", f"{binary:,}",
                         first_clause(models.arch_builder(family, arch).__doc__)))
    return ("family", "arch", "variant", "params", "binary", "description"), rows


def datasets() -> Table:
    """Every dataset: image shape, classes, the model family it fits, description."""
    rows = []
    for name in data.list_datasets():
        shape = data.dataset_shape(name)
        module = inspect.getmodule(data.loader(name))
        rows.append((name, f"{shape.in_channels}×{shape.image_size}×{shape.image_size}",
                     str(shape.num_classes), shape.family, first_clause(module.__doc__)))
    return ("dataset", "image", "classes", "family", "description"), rows


def grids() -> Table:
    """Every shipped grid: its cells and its description."""
    rows = []
    for name in grid.list_grids():
        loaded = grid.load_grid(name)
        rows.append((name, str(len(loaded.cells)), loaded.description))
    return ("grid", "cells", "description"), rows


def format_table(table: Table) -> list[str]:
    """The header and rows as lines of left-aligned columns."""
    header, rows = table
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
            for row in [header] + rows]
