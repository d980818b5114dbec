"""Grid files: a TOML file that names the axes of an experiment, expanded into cells.

A grid is data, not code, so a published table is one small file that anyone can rerun, and
the same cell (same resolved config) always gets the same id and folder in the run store.

Keys (top level)
  name         str            grid name = the run store's folder (default: the file's stem)
  description  str            free text, shown by --dry-run
  datasets     str | [str]    axis: cifar10 | imagenet | digits (bnnbench.data.list_datasets())
  archs        str | [str]    axis: models of the dataset's family (bnnbench.models.list_archs)
  binarizers   str | [entry]  axis: a registered name, or an inline table
                              {name = "biper", omega0 = 30}; a list-valued param is an axis
  seeds        int | [int]    a count n (seeds 0..n-1) or an explicit list (default 1)
  epochs       int            override every stage's epochs (CellConfig.epochs)
  total_epochs int            epochs of all stages together, split over a two-stage method's
                              stages in its recipe's ratio (CellConfig.total_epochs)
  budget       float          fraction of each stage's epochs, in (0, 1] (at least 1 epoch)
  subset       int            train on the first N images only (quick runs)
  data_dir     str            where the datasets live (relative to the grid file)
  plugins      [str]          plugin files: binarizers, archs, datasets (relative to the grid file)
  compile      bool           torch.compile the models
Tables
  [recipe]                    overrides of every stage's recipe, for every cell. Keys:
                              epochs, batch_size, warmup_epochs, start_epoch,
                              eval_batch_size (int); lr, momentum, weight_decay (float);
                              optimizer, decay, schedule, normalize, init_from (str); their
                              meanings are in bnnbench.recipe.RECIPE_KEYS
  [stage.<stage>]             the same recipe keys, for one stage (e.g. [stage.sine]); applies
                              to the cells whose binarizer has that stage
  [binarizer.<name>]          the binarizer's own parameters (e.g. omega0 = 20), for every
                              entry of `binarizers` with that name; may hold its own
                              [binarizer.<name>.recipe] and [binarizer.<name>.stage.<stage>]
A list value anywhere in [recipe], [stage.*] or [binarizer.*] (or in an inline binarizer
table) is one more axis: `omega0 = [10, 20, 30]` makes three cells per (dataset, arch, seed).
Cells are ordered seed-major (all of seed 0 first), then dataset, arch, binarizer, params;
the teacher cells that distilling cells need and the grid does not list come first
(bnnbench.teachers). Each cell is resolved once, here: a grid holds ResolvedCells.

Every mistake (unknown key, unknown dataset/arch/binarizer, wrong type) is one BnnbenchError
line: `<file>:<line>: <key>: <problem and fix>` (bnnbench.gridfile reads and checks the file).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from ..api import registry
from ..errors import BnnbenchError
from .cell import CellConfig, check_scalar
from .gridfile import (GRID_NAME, GridFile, axis, binarizer_entries, binarizer_tables,
                       datasets_archs, find_grid, list_grids, read_grid_file, recipe_table, seeds,
                       stage_tables, str_list)
from .resolve import ResolvedCell, resolve

__all__ = ["Grid", "load_grid", "describe", "find_grid", "list_grids"]


@dataclass
class Grid:
    name: str
    path: Path
    cells: list[ResolvedCell]
    description: str = ""
    duplicates: int = 0                      # entries that resolved to an already listed cell
    raw: dict = field(default_factory=dict)  # the parsed TOML


# --- axes --------------------------------------------------------------------------------
def _product(table: dict) -> list[dict]:
    """Every combination of a table whose list values are axes (in key order)."""
    keys = list(table)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axis(table[k]) for k in keys))]


def _stage_product(stages: dict[str, dict]) -> list[dict[str, dict]]:
    """Combinations of per-stage recipes (list values are axes), as {stage: recipe}."""
    flat = {(s, k): v for s, recipe in stages.items() for k, v in recipe.items()}
    out = []
    for combo in _product(flat):
        nested: dict[str, dict] = {}
        for (s, k), v in combo.items():
            nested.setdefault(s, {})[k] = v
        out.append(nested)
    return out


def _merge_stages(*layers: dict[str, dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for layer in layers:
        for stage, recipe in layer.items():
            out.setdefault(stage, {}).update(recipe)
    return out


# --- loading -----------------------------------------------------------------------------
def load_grid(name_or_path: str | Path, *, data_dir: str | None = None, plugins=(),
              epochs: int | None = None, total_epochs: int | None = None,
              budget: float | None = None, subset: int | None = None,
              device: str | None = None) -> Grid:
    """Read and expand a grid file; keyword arguments override the file's values (`epochs`
    per stage also drops the file's `total_epochs`, and `total_epochs` the file's `epochs`)."""
    path = find_grid(name_or_path)
    _check_options(epochs=epochs, total_epochs=total_epochs, budget=budget, subset=subset)
    ctx, raw = read_grid_file(path)
    base = path.parent.resolve()

    # plugins first: they may register the binarizers named below
    plugin_files = [str((base / p).resolve()) for p in
                    (str_list(ctx, ("plugins",), raw["plugins"]) if "plugins" in raw else [])]
    plugin_files += [str(Path(p).resolve()) for p in plugins]
    registry.load_plugins(plugin_files)

    datasets, archs = datasets_archs(ctx, raw)
    seed_axis = seeds(ctx, raw)
    entries = binarizer_entries(ctx, raw)
    per_binarizer = binarizer_tables(ctx, raw, {cls.name for cls, _ in entries})
    recipe = recipe_table(ctx, ("recipe",), raw.get("recipe", {}))
    stages = stage_tables(ctx, ("stage",), raw.get("stage", {}),
                          {s for cls, _ in entries for s in cls.stages})
    scalars = _scalars(ctx, raw, epochs=epochs, total_epochs=total_epochs, budget=budget,
                       subset=subset)
    if "name" in raw and not GRID_NAME.match(raw["name"]):
        raise ctx.error(("name",), f"must be a folder name of letters, digits, '.', '_' or '-', "
                                   f"got {raw.get('name')!r}")
    root = data_dir if data_dir is not None else (
        str((base / raw["data_dir"]).resolve()) if "data_dir" in raw else None)

    variants = _variants(ctx, entries, per_binarizer, recipe, stages)
    common = dict(data_dir=root, compile=raw.get("compile", False), device=device,
                  plugins=plugin_files, **scalars)
    cells, duplicates = _cells(ctx, itertools.product(seed_axis, datasets, archs, variants),
                               common)
    return Grid(name=raw.get("name", path.stem), path=path, cells=add_teachers(cells),
                description=raw.get("description", ""), duplicates=duplicates, raw=raw)


def _check_options(**options) -> None:
    """The command line's overrides, each named as its option in the error."""
    for key, value in options.items():
        if value is not None:
            try:
                check_scalar(key, value)
            except BnnbenchError as exc:
                raise BnnbenchError(f"--{key.replace('_', '-')}: {exc}") from None


def _scalars(ctx: GridFile, raw: dict, *, epochs, total_epochs, budget, subset) -> dict:
    """epochs, total_epochs, budget, subset: the command line's value, else the file's."""
    given = epochs is not None or total_epochs is not None  # the command line's epochs win
    scalars = dict(
        epochs=epochs if given else raw.get("epochs"),
        total_epochs=total_epochs if given else raw.get("total_epochs"),
        budget=budget if budget is not None else raw.get("budget", 1.0),
        subset=subset if subset is not None else raw.get("subset"),
    )
    for key, value in scalars.items():
        try:
            check_scalar(key, value)
        except BnnbenchError as exc:
            raise ctx.error((key,), str(exc).split(" ", 1)[1]) from None
    return scalars


def _variants(ctx: GridFile, entries, per_binarizer: dict, recipe: dict,
              stages: dict) -> list[tuple[dict, dict, dict]]:
    """Each binarizer entry -> its list of (params, recipe, stage recipes) variants."""
    variants = []
    for cls, inline in entries:
        table = dict(per_binarizer.get(cls.name, {}))
        key = ("binarizer", cls.name)
        b_recipe = recipe_table(ctx, key + ("recipe",), table.pop("recipe", {}))
        b_stages = stage_tables(ctx, key + ("stage",), table.pop("stage", {}), set(cls.stages))
        params = {**table, **inline}
        for p, v in params.items():
            if isinstance(v, list) and not v:
                raise ctx.error(key + (p,), "an empty list gives no cells")
        own_stages = {s: r for s, r in stages.items() if s in cls.stages}
        for combo in _product(params):
            try:
                registry.resolve({"name": cls.name, **combo})
            except BnnbenchError as exc:
                bad = next((p for p in combo if f"'{p}'" in str(exc)), None)
                where = key + (bad,) if bad in table and bad not in inline else ("binarizers",)
                raise ctx.error(where, str(exc)) from None
            spec = {"name": cls.name, **combo}
            for rec in _product({**recipe, **b_recipe}):
                for st in _stage_product(_merge_stages(own_stages, b_stages)):
                    variants.append((spec, rec, st))
    return variants


def _cells(ctx: GridFile, combos, common: dict) -> tuple[list[ResolvedCell], int]:
    """One cell per (seed, dataset, arch, variant), in that order, and how many repeated one."""
    cells, seen, duplicates = [], set(), 0
    for seed, ds, arch, (spec, rec, st) in combos:
        cell = CellConfig(dataset=ds, arch=arch, binarizer=dict(spec), seed=seed, recipe=dict(rec),
                          stage_recipes={s: dict(r) for s, r in st.items()},
                          **{**common, "plugins": list(common["plugins"])})
        try:
            resolved = resolve(cell)
        except BnnbenchError as exc:   # a teacher table's own cell fails its checks here
            raise ctx.error(("teacher",), str(exc)) from None
        if resolved.id in seen:
            duplicates += 1
            continue
        seen.add(resolved.id)
        cells.append(resolved)
    return cells, duplicates


def add_teachers(cells: list[ResolvedCell]) -> list[ResolvedCell]:
    """`cells` with the teachers they need and do not list, those first."""
    ids = {c.id for c in cells}
    extra = []
    for cell in cells:
        for teacher in cell.teachers:
            if teacher.id not in ids:
                ids.add(teacher.id)
                extra.append(teacher)
    return extra + cells


def describe(cell: CellConfig) -> str:
    """'biper(omega0=10)' — the binarizer with the params the grid set."""
    spec = cell.binarizer if isinstance(cell.binarizer, dict) else {"name": cell.binarizer}
    params = {k: v for k, v in spec.items() if k != "name"}
    text = spec["name"] + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")
    extra = {**cell.recipe, **{f"{s}.{k}": v for s, r in cell.stage_recipes.items()
                                for k, v in r.items()}}
    if extra:
        text += " [" + ", ".join(f"{k}={v}" for k, v in extra.items()) + "]"
    return text
