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
  plugins      [str]          plugin files defining binarizers (relative to the grid file)
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
(bnnbench.teachers).

Every mistake (unknown key, unknown dataset/arch/binarizer, wrong type) is one BnnbenchError
line: `<file>:<line>: <key>: <problem and fix>`.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:   # Python 3.10: the same parser, as the `tomli` package
    import tomli as tomllib

from . import recipe as recipes, registry
from .cell import CellConfig, check_dataset_arch, check_scalar
from .errors import BnnbenchError
from .teachers import add_teachers

# the recipe keys a grid sets in [recipe]/[stage.*] (binarizer parameters have their own tables)
RECIPE_KEYS = [k for k in recipes.RECIPE_KEYS if k != "binarizer"]
TOP_KEYS: dict[str, Any] = {
    "name": str, "description": str, "datasets": None, "archs": None, "binarizers": None,
    "seeds": None, "epochs": int, "total_epochs": int, "budget": float, "subset": int,
    "data_dir": str,
    "plugins": list, "compile": bool, "recipe": dict, "stage": dict, "binarizer": dict,
}


@dataclass
class Grid:
    name: str
    path: Path
    cells: list[CellConfig]
    description: str = ""
    duplicates: int = 0                      # entries that resolved to an already listed cell
    raw: dict = field(default_factory=dict)  # the parsed TOML


# --- finding a grid ----------------------------------------------------------------------
def list_grids() -> list[str]:
    """Names of the grids shipped in tasks/ (importable as bnnbench.tasks)."""
    return sorted(p.name[:-5] for p in resources.files("bnnbench.tasks").iterdir()
                  if p.name.endswith(".toml"))


def find_grid(name_or_path: str | Path) -> Path:
    """A path to a .toml file, or the name of a shipped grid (tasks/<name>.toml)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if text.endswith(".toml") or "/" in text or "\\" in text:
        raise BnnbenchError(f"grid file not found: {text}")
    shipped = resources.files("bnnbench.tasks") / f"{text}.toml"
    if not shipped.is_file():
        raise BnnbenchError(f"unknown grid '{text}'; shipped grids: {', '.join(list_grids())} "
                            "(or give the path of your own .toml file)")
    return Path(str(shipped))


# --- errors with line numbers ------------------------------------------------------------
_GRID_NAME = re.compile(r"^(?!\.+$)[A-Za-z0-9._-]+$")   # one folder below results/runs
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))


def line_of(text: str, path: tuple[str, ...]) -> int:
    """1-based line where the key `path` (or its table header) is defined; 1 if not found."""
    table: tuple[str, ...] = ()
    best = None
    for number, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            table = _split_key(m.group(1))
            if table == path:
                return number
            continue
        m = _ASSIGN.match(line)
        if m:
            full = table + _split_key(m.group(1))
            if full == path:
                return number
            if best is None and full == path[:len(full)] and len(full) > len(table):
                best = number    # an inline table or a dotted key that holds `path`
    if best is not None:
        return best
    for number, line in enumerate(text.splitlines(), 1):   # last resort: the bare word
        if re.search(rf"\b{re.escape(path[-1])}\b", line.split("#", 1)[0]):
            return number
    return 1


class _Ctx:
    """The file being read: turns a problem at a key into a one-line BnnbenchError."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def error(self, key: tuple[str, ...], problem: str, line: int | None = None) -> BnnbenchError:
        return BnnbenchError(f"{self.path}:{line or line_of(self.text, key)}: "
                             f"{'.'.join(key)}: {problem}")


# --- type checks -------------------------------------------------------------------------
def _typename(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _check(ctx: _Ctx, key: tuple, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ctx.error(key, f"must be {_typename(kind())}, got {_typename(value)} {value!r}")


def _str_list(ctx: _Ctx, key: tuple, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise ctx.error(key, f"must be a name or a list of names, got {value!r}")
    if not items:
        raise ctx.error(key, "must not be empty")
    return items


def _axis(value: Any) -> list:
    """A list is an axis; anything else is one value."""
    return value if isinstance(value, list) else [value]


def _product(table: dict) -> list[dict]:
    """Every combination of a table whose list values are axes (in key order)."""
    keys = list(table)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(_axis(table[k]) for k in keys))]


def _recipe(ctx: _Ctx, key: tuple, table: Any) -> dict:
    """Check a recipe table (values or lists of values of the right type)."""
    table = _check(ctx, key, table, dict)
    out = {}
    for k, v in table.items():
        if k not in RECIPE_KEYS:
            raise ctx.error(key + (k,), f"unknown recipe key; known: {', '.join(RECIPE_KEYS)}")
        if isinstance(v, list) and not v:
            raise ctx.error(key + (k,), "an empty list gives no cells")
        values = [_check(ctx, key + (k,), x, recipes.key_type(k)) for x in _axis(v)]
        for x in values:   # the allowed choices (optimizer, schedule, ...) live in recipe.py
            try:
                recipes.check_recipe({k: x}, "recipe")
            except BnnbenchError as exc:
                raise ctx.error(key + (k,), str(exc).split(": ", 1)[-1]) from None
        out[k] = values if isinstance(v, list) else values[0]
    return out


def _stages(ctx: _Ctx, key: tuple, table: Any, known: set[str]) -> dict[str, dict]:
    table = _check(ctx, key, table, dict)
    out = {}
    for stage, recipe in table.items():
        if stage not in known:
            raise ctx.error(key + (stage,), f"no binarizer of this grid has stage '{stage}'; "
                                            f"stages: {', '.join(sorted(known))}")
        out[stage] = _recipe(ctx, key + (stage,), recipe)
    return out


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
    for option, value in (("--epochs", epochs), ("--total-epochs", total_epochs),
                          ("--budget", budget), ("--subset", subset)):
        if value is not None:
            try:
                check_scalar(option[2:].replace("-", "_"), value)
            except BnnbenchError as exc:
                raise BnnbenchError(f"{option}: {exc}") from None
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise BnnbenchError(f"{path}: not a UTF-8 text file ({exc.reason} at byte "
                            f"{exc.start}); save it as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        line = m.group(1) if m else max(1, len(text.splitlines()))
        raise BnnbenchError(f"{path}:{line}: invalid TOML: {exc}") from None
    ctx = _Ctx(path, text)
    base = path.parent.resolve()

    for key, value in raw.items():
        if key not in TOP_KEYS:
            hint = ""
            if key in ("dataset", "arch", "seed"):
                hint = f" (the axis is '{key}s')"
            raise ctx.error((key,), f"unknown key{hint}; known: {', '.join(TOP_KEYS)}")
        if TOP_KEYS[key] is not None and key != "binarizer":
            raw[key] = _check(ctx, (key,), value, TOP_KEYS[key])
    if "binarizer" in raw and not isinstance(raw["binarizer"], dict):
        raise ctx.error(("binarizer",), "must be a table of per-binarizer parameters "
                                        "([binarizer.<name>]); the axis is 'binarizers'")
    for key in ("datasets", "archs", "binarizers"):
        if key not in raw:
            raise ctx.error((key,), f"missing: give {key} = [...]", line=1)

    # plugins first: they may register the binarizers named below
    plugin_files = [str((base / p).resolve()) for p in
                    (_str_list(ctx, ("plugins",), raw["plugins"]) if "plugins" in raw else [])]
    plugin_files += [str(Path(p).resolve()) for p in plugins]
    registry.load_plugins(plugin_files)

    datasets = _str_list(ctx, ("datasets",), raw["datasets"])
    archs = _str_list(ctx, ("archs",), raw["archs"])
    for ds, arch in itertools.product(datasets, archs):
        try:
            check_dataset_arch(ds, arch)
        except BnnbenchError as exc:
            raise ctx.error(("datasets",) if "dataset '" in str(exc) else ("archs",),
                            str(exc)) from None

    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool) and seeds_raw >= 1:
        seeds = list(range(seeds_raw))
    elif (isinstance(seeds_raw, list) and seeds_raw
          and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds_raw)):
        seeds = list(dict.fromkeys(seeds_raw))
    else:
        raise ctx.error(("seeds",), f"must be a count >= 1 or a list of integers, "
                                    f"got {seeds_raw!r}")

    # binarizer entries: (class, inline params, its key for errors)
    entries = []
    for item in _axis(raw["binarizers"]):
        if isinstance(item, str):
            name, inline = item, {}
        elif isinstance(item, dict):
            inline = dict(item)
            name = inline.pop("name", None)
            if not isinstance(name, str):
                raise ctx.error(("binarizers",), f"an inline table needs name = \"...\": {item!r}")
        else:
            raise ctx.error(("binarizers",), f"each entry is a name or an inline table "
                                             f"{{name = ..., param = ...}}, got {item!r}")
        try:
            cls = registry.get(name)
        except BnnbenchError as exc:
            raise ctx.error(("binarizers",), str(exc)) from None
        entries.append((cls, inline))
    if not entries:
        raise ctx.error(("binarizers",), "must not be empty")
    names = {cls.name for cls, _ in entries}
    all_stages = {s for cls, _ in entries for s in cls.stages}

    per_binarizer = raw.get("binarizer", {})
    for name, table in per_binarizer.items():
        key = ("binarizer", name)
        if name not in names:
            raise ctx.error(key, f"'{name}' is not in binarizers "
                                 f"({', '.join(sorted(names))}); add it there or remove this table")
        _check(ctx, key, table, dict)
    recipe = _recipe(ctx, ("recipe",), raw.get("recipe", {}))
    stages = _stages(ctx, ("stage",), raw.get("stage", {}), all_stages)

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
    if "name" in raw and not _GRID_NAME.match(raw["name"]):
        raise ctx.error(("name",), f"must be a folder name of letters, digits, '.', '_' or '-', "
                                   f"got {raw.get('name')!r}")
    root = data_dir if data_dir is not None else (
        str((base / raw["data_dir"]).resolve()) if "data_dir" in raw else None)

    # each binarizer entry -> its list of (params, recipe, stage recipes) variants
    variants = []
    for cls, inline in entries:
        table = dict(per_binarizer.get(cls.name, {}))
        key = ("binarizer", cls.name)
        b_recipe = _recipe(ctx, key + ("recipe",), table.pop("recipe", {}))
        b_stages = _stages(ctx, key + ("stage",), table.pop("stage", {}), set(cls.stages))
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

    cells, seen, duplicates = [], set(), 0
    for seed, ds, arch, (spec, rec, st) in itertools.product(seeds, datasets, archs, variants):
        cell = CellConfig(dataset=ds, arch=arch, binarizer=dict(spec), seed=seed, recipe=dict(rec),
                          stage_recipes={s: dict(r) for s, r in st.items()}, data_dir=root,
                          compile=raw.get("compile", False), device=device,
                          plugins=list(plugin_files), **scalars)
        try:
            cid = cell.cell_id()
        except BnnbenchError as exc:   # a teacher table's own cell fails its checks here
            raise ctx.error(("teacher",), str(exc)) from None
        if cid in seen:
            duplicates += 1
            continue
        seen.add(cid)
        cells.append(cell)
    return Grid(name=raw.get("name", path.stem), path=path, cells=add_teachers(cells),
                description=raw.get("description", ""), duplicates=duplicates, raw=raw)


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
