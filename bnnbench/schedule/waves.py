"""A grid's cells in waves: the teachers first, then the students whose teachers finished."""
from __future__ import annotations

from typing import Callable, Iterator

from ..experiment.resolve import ResolvedCell
from ..store.reader import RunStore


def waves(cells: list[ResolvedCell], runs: RunStore,
          echo: Callable[[str], None]) -> Iterator[list[ResolvedCell]]:
    """The cells to run, in waves: first the teachers among them, then (read after the first
    wave has run: the caller refreshes its records) the others whose teachers have finished.
    A student whose teacher did not finish is left as it is (one line), and starts on a rerun
    once its teacher has."""
    ids = {c.id: c.teacher_ids for c in cells}
    needed = {tid for tids in ids.values() for tid in tids}
    first = [c for c in cells if c.id in needed]
    if first:
        yield first
    ready, waiting = [], []
    for cell in cells:
        if cell.id not in needed:
            done = all(runs[tid].progress == "finished" for tid in ids[cell.id])
            (ready if done else waiting).append(cell)
    if waiting:
        echo(f"{len(waiting)} cell(s) wait for a teacher that has not finished "
             f"({', '.join(sorted({t for c in waiting for t in ids[c.id]}))}); they start "
             "on a rerun once it has")
    if ready:
        yield ready
