"""What the run store holds for a grid's cells: the table of their statuses and results, and
the lines that name stale and damaged folders. Read by `run` before it schedules cells and for
its `--dry-run` (the statuses themselves: store.reader)."""
from __future__ import annotations

from ..experiment.grid import Grid, describe
from ..experiment.resolve import ResolvedCell
from ..store.reader import RunStore


def cell_table(grid: Grid, runs: RunStore):
    """One row per cell of the grid with its status and result in the store (a DataFrame);
    `replaces` names the stale folders of the same cell that it supersedes."""
    import pandas as pd

    stale = stale_folders(runs)
    rows = []
    for cell in grid.cells:
        record = runs[cell.id]
        status = record.status
        result = {"error": record.damage} if status == "damaged" else record.result
        epochs_done = result.get("epochs")
        if status == "partial":
            epochs_done = len(record.metrics)
        rows.append({
            "cell": cell.id, "dataset": cell.config.dataset, "arch": cell.config.arch,
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


def stale_folders(runs: RunStore) -> dict[str, dict]:
    """{folder name: recorded cell} of the run store's cell folders trained with a resolved
    recipe or binarizer code that differs from today's (CellRecord.stale_reason): never reused,
    left out of reports."""
    return {record.path.name: record.config.get("cell", {})
            for record in runs if record.stale_reason}


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


def stale_line(runs: RunStore) -> str | None:
    """One line naming the stale folders of the run store, or None."""
    stale = list(stale_folders(runs))
    if not stale:
        return None
    shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    return (f"{len(stale)} folder(s) in {runs.path} were trained with a recipe or binarizer code "
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


def damage_lines(runs: RunStore, cell_ids) -> list[str]:
    """For each damaged cell, one line: what is wrong and what `run` does about it."""
    out = []
    for cid in cell_ids:
        record = runs[cid]
        if record.config_readable:
            out.append(f"repairing {cid}: {record.damage}; its records are rewritten from its "
                       "checkpoint")
        else:
            out.append(f"cannot read {cid}: {record.damage}; restore that file, or delete the "
                       "folder to train the cell again")
    return out
