"""What the run store holds for a grid's cells: each cell's status, the table of them, and the
lines that name stale and damaged folders. Read by `run` before it schedules cells and for
its `--dry-run`; kept apart from tune.py, which runs them."""
from __future__ import annotations

from pathlib import Path

from ..errors import BnnbenchError
from ..experiment.grid import Grid, describe
from ..experiment.resolve import ResolvedCell
from ..store import runstore
from ..store.reader import stale_reason


def cell_status(store: Path, cell: ResolvedCell) -> str:
    """finished | failed | partial (has a checkpoint or metrics) | new | damaged (a record
    cannot be read) | stale (trained with binarizer code that has changed since)."""
    return _status_and_result(Path(store) / cell.id)[0]


def _status_and_result(folder: Path) -> tuple[str, dict]:
    """`cell_status` of a cell folder and its result.json (the damage as "error" when a
    record cannot be read), each record read once."""
    damage = runstore.damage(folder)
    if damage:
        return "damaged", {"error": damage}
    result = runstore.read_result(folder)
    status = runstore.status_of(folder, result)
    if status != "new" and (folder / runstore.CONFIG).exists() and stale_reason(
            runstore.read_json(folder / runstore.CONFIG)):
        return "stale", result
    return status, result


def cell_table(grid: Grid, store: Path):
    """One row per cell of the grid with its status and result in the store (a DataFrame);
    `replaces` names the stale folders of the same cell that it supersedes."""
    import pandas as pd

    stale = stale_folders(store)
    rows = []
    for cell in grid.cells:
        cid = cell.id
        folder = Path(store) / cid
        status, result = _status_and_result(folder)
        epochs_done = result.get("epochs")
        if status == "partial":
            epochs_done = len(runstore.read_metrics(folder / runstore.METRICS))
        rows.append({
            "cell": cid, "dataset": cell.config.dataset, "arch": cell.config.arch,
            "binarizer": describe(cell.given), "seed": cell.config.seed,
            "teacher": ", ".join(cell.teacher_ids), "status": status,
            "top1": result.get("top1"), "best_top1": result.get("best_top1"), "epochs": epochs_done,
            "planned": cell.planned_epochs,
            "minutes": None if result.get("seconds") is None else result["seconds"] / 60,
            "error": (result.get("error") or "")[:120], "replaces": _superseded(cell, stale)})
    df = pd.DataFrame(rows)
    if not df.empty:
        df["epochs"] = df["epochs"].astype("Int64")
        df[["top1", "best_top1", "minutes"]] = df[["top1", "best_top1", "minutes"]].astype(float)
    return df


def stale_folders(store: Path) -> dict[str, dict]:
    """{folder name: recorded cell} of the run store's cell folders trained with a resolved
    recipe or binarizer code that differs from today's (cell.stale_reason): never reused, left
    out of reports."""
    out = {}
    for folder in runstore.cell_dirs(store) if Path(store).is_dir() else ():
        try:
            config = runstore.read_json(folder / runstore.CONFIG)
        except (OSError, BnnbenchError):   # a damaged record is named elsewhere (damage_lines)
            continue
        if isinstance(config, dict) and stale_reason(config):
            out[folder.name] = config.get("cell", {})
    return out


def _superseded(cell: ResolvedCell, stale: dict[str, dict]) -> str:
    """The stale folders of this cell: same dataset, arch, binarizer and seed, and recorded with
    the binarizer parameters this cell sets."""
    config = cell.config
    spec = config.binarizer
    names = []
    for name, old in stale.items():
        old_spec = old.get("binarizer")
        old_spec = old_spec if isinstance(old_spec, dict) else {"name": old_spec}
        if ((old.get("dataset"), old.get("arch"), old.get("seed")) == (config.dataset,
                                                                       config.arch, config.seed)
                and all(old_spec.get(k) == v for k, v in spec.items())):
            names.append(name)
    return ", ".join(names)


def stale_line(store: Path) -> str | None:
    """One line naming the stale folders of `store`, or None."""
    stale = list(stale_folders(store))
    if not stale:
        return None
    shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    return (f"{len(stale)} folder(s) in {store} were trained with a recipe or binarizer code "
            f"that differs from today's (stale: never reused, left out of reports): {shown}")


def format_table(df) -> str:
    if df.empty:
        return "(no cells)"
    shown = df.copy()
    for col in ("teacher", "error", "replaces"):   # only when some cell has one
        if col in shown and not shown[col].astype(bool).any():
            shown = shown.drop(columns=col)
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda v: "-" if v != v else f"{v:.2f}")
        else:
            shown[col] = shown[col].astype(object).where(shown[col].notna(), "-")
    return shown.to_string(index=False)


def damage_lines(store: Path, cell_ids) -> list[str]:
    """For each damaged cell, one line: what is wrong and what `run` does about it."""
    out = []
    for cid in cell_ids:
        folder = Path(store) / cid
        if config_readable(folder):
            out.append(f"repairing {cid}: {runstore.damage(folder)}; its records are rewritten "
                       "from its checkpoint")
        else:
            out.append(f"cannot read {cid}: {runstore.damage(folder)}; restore that file, or "
                       "delete the folder to train the cell again")
    return out


def config_readable(folder: Path) -> bool:
    """Whether a cell folder's config.json reads back (then train_cell can verify the cell
    and rebuild its other records from its checkpoint)."""
    try:
        return isinstance(runstore.read_json(folder / runstore.CONFIG), dict)
    except BnnbenchError:
        return False
