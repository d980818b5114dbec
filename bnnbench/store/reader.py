"""The one reader of a run folder: what it holds and, from that, the cell's status."""
from __future__ import annotations

from ..errors import BnnbenchError
from ..experiment.cell import CellConfig, same_code
from ..experiment.resolve import resolve


def stale_reason(config: dict) -> str | None:
    """Why a run folder's config.json no longer describes what today's code would train, or
    None: "recipe" when today's code gives its cell another id (its resolved recipe changed),
    "code" when its binarizer's source file changed since it trained (`same_code`). None too when the cell
    no longer resolves (e.g. its plugin file is gone): that fault is named where the cell is
    built."""
    try:
        cell = resolve(CellConfig.from_dict(config["cell"]))
        if cell.id != config.get("cell_id"):
            return "recipe"
        recorded = config.get("code", {}).get("sha256")
        if recorded and not same_code(cell.config.binarizer, recorded):
            return "code"
    except (BnnbenchError, KeyError, TypeError, OSError):
        return None
    return None
