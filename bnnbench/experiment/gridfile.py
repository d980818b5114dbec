"""Reading a grid file: finding it, parsing its TOML and checking each value, where every
problem is one BnnbenchError line `<file>:<line>: <key>: <problem and fix>`.

Kept apart from bnnbench.grid (the keys' meanings, and the expansion of the checked values into
cells) so that the line-number bookkeeping does not hide how a grid becomes cells.
"""
from __future__ import annotations

import itertools
import re
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:   # Python 3.10: the same parser, as the `tomli` package
    import tomli as tomllib

from ..api import registry
from ..errors import BnnbenchError
from . import recipe as recipes
from .cell import check_dataset_arch

# the recipe keys a grid sets in [recipe]/[stage.*] (binarizer parameters have their own tables)
RECIPE_KEYS = [k for k in recipes.RECIPE_KEYS if k != "binarizer"]
TOP_KEYS: dict[str, Any] = {
    "name": str, "description": str, "datasets": None, "archs": None, "binarizers": None,
    "seeds": None, "epochs": int, "total_epochs": int, "budget": float, "subset": int,
    "data_dir": str,
    "plugins": list, "compile": bool, "recipe": dict, "stage": dict, "binarizer": dict,
}


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
GRID_NAME = re.compile(r"^(?!\.+$)[A-Za-z0-9._-]+$")   # one folder below results/runs
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


class GridFile:
    """The file being read: turns a problem at a key into a one-line BnnbenchError."""

    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def error(self, key: tuple[str, ...], problem: str, line: int | None = None) -> BnnbenchError:
        return BnnbenchError(f"{self.path}:{line or line_of(self.text, key)}: "
                             f"{'.'.join(key)}: {problem}")


def read_grid_file(path: Path) -> tuple[GridFile, dict]:
    """The parsed TOML, its top-level keys checked (known, of the right type, axes present)."""
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
    ctx = GridFile(path, text)
    for key, value in raw.items():
        if key not in TOP_KEYS:
            hint = ""
            if key in ("dataset", "arch", "seed"):
                hint = f" (the axis is '{key}s')"
            raise ctx.error((key,), f"unknown key{hint}; known: {', '.join(TOP_KEYS)}")
        if TOP_KEYS[key] is not None and key != "binarizer":
            raw[key] = check_type(ctx, (key,), value, TOP_KEYS[key])
    if "binarizer" in raw and not isinstance(raw["binarizer"], dict):
        raise ctx.error(("binarizer",), "must be a table of per-binarizer parameters "
                                        "([binarizer.<name>]); the axis is 'binarizers'")
    for key in ("datasets", "archs", "binarizers"):
        if key not in raw:
            raise ctx.error((key,), f"missing: give {key} = [...]", line=1)
    return ctx, raw


# --- type checks -------------------------------------------------------------------------
def _typename(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def check_type(ctx: GridFile, key: tuple, value: Any, kind: type) -> Any:
    """`value` as `kind` (an integer is a float too), or the error naming both types."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ctx.error(key, f"must be {_typename(kind())}, got {_typename(value)} {value!r}")


def str_list(ctx: GridFile, key: tuple, value: Any) -> list[str]:
    """A name or a non-empty list of names, as a list."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise ctx.error(key, f"must be a name or a list of names, got {value!r}")
    if not items:
        raise ctx.error(key, "must not be empty")
    return items


def axis(value: Any) -> list:
    """A list is an axis; anything else is one value."""
    return value if isinstance(value, list) else [value]


# --- the axes and tables -----------------------------------------------------------------
def datasets_archs(ctx: GridFile, raw: dict) -> tuple[list[str], list[str]]:
    """The dataset and arch axes, every pair of them a model the dataset can train."""
    datasets = str_list(ctx, ("datasets",), raw["datasets"])
    archs = str_list(ctx, ("archs",), raw["archs"])
    for ds, arch in itertools.product(datasets, archs):
        try:
            check_dataset_arch(ds, arch)
        except BnnbenchError as exc:
            raise ctx.error(("datasets",) if "dataset '" in str(exc) else ("archs",),
                            str(exc)) from None
    return datasets, archs


def seeds(ctx: GridFile, raw: dict) -> list[int]:
    """`seeds = n` is seeds 0..n-1; a list is taken as given (repeats dropped)."""
    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool) and seeds_raw >= 1:
        return list(range(seeds_raw))
    if (isinstance(seeds_raw, list) and seeds_raw
            and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds_raw)):
        return list(dict.fromkeys(seeds_raw))
    raise ctx.error(("seeds",), f"must be a count >= 1 or a list of integers, "
                                f"got {seeds_raw!r}")


def binarizer_entries(ctx: GridFile, raw: dict) -> list[tuple[type, dict]]:
    """Each entry of `binarizers` as (registered class, its inline params)."""
    entries = []
    for item in axis(raw["binarizers"]):
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
    return entries


def binarizer_tables(ctx: GridFile, raw: dict, names: set[str]) -> dict[str, dict]:
    """The [binarizer.<name>] tables, each for a binarizer the grid lists."""
    per_binarizer = raw.get("binarizer", {})
    for name, table in per_binarizer.items():
        key = ("binarizer", name)
        if name not in names:
            raise ctx.error(key, f"'{name}' is not in binarizers "
                                 f"({', '.join(sorted(names))}); add it there or remove this table")
        check_type(ctx, key, table, dict)
    return per_binarizer


def recipe_table(ctx: GridFile, key: tuple, table: Any) -> dict:
    """Check a recipe table (values or lists of values of the right type)."""
    table = check_type(ctx, key, table, dict)
    out = {}
    for k, v in table.items():
        if k not in RECIPE_KEYS:
            raise ctx.error(key + (k,), f"unknown recipe key; known: {', '.join(RECIPE_KEYS)}")
        if isinstance(v, list) and not v:
            raise ctx.error(key + (k,), "an empty list gives no cells")
        values = [check_type(ctx, key + (k,), x, recipes.key_type(k)) for x in axis(v)]
        for x in values:   # the allowed choices (optimizer, schedule, ...) live in recipe.py
            try:
                recipes.check_recipe({k: x}, "recipe")
            except BnnbenchError as exc:
                raise ctx.error(key + (k,), str(exc).split(": ", 1)[-1]) from None
        out[k] = values if isinstance(v, list) else values[0]
    return out


def stage_tables(ctx: GridFile, key: tuple, table: Any, known: set[str]) -> dict[str, dict]:
    """Check [stage.<stage>] recipe tables, each for a stage in `known`."""
    table = check_type(ctx, key, table, dict)
    out = {}
    for stage, recipe in table.items():
        if stage not in known:
            raise ctx.error(key + (stage,), f"no binarizer of this grid has stage '{stage}'; "
                                            f"stages: {', '.join(sorted(known))}")
        out[stage] = recipe_table(ctx, key + (stage,), recipe)
    return out
