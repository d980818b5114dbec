"""The driver's live view of a grid, fed by Ray Tune's per-epoch reports of each trial.

A line per event (a cell starts, finishes, fails, is retried), and the state of the grid:
finished/failed counts, each running cell's epoch/total and last top-1, and an ETA from the
measured epoch times. On a terminal that state is a refreshing tqdm bar; elsewhere (a log
file, CI, a cluster job) it is one line at most every `every` seconds.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from ray import tune
from tqdm.auto import tqdm

from ..store.reader import CellRecord
from .trial import trial_name


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class GridProgress(tune.Callback):
    """Tune callback: counts, running cells and ETA of the grid being run."""

    def __init__(self, *, cells: int, finished: int, failed: int, planned: dict[str, int],
                 done: dict[str, int], store: Path, labels: dict[str, str], echo,
                 every: float, tty: bool):
        self.cells, self.finished, self.failed = cells, finished, failed
        self.planned, self.done = planned, dict(done)   # epochs per cell to run: all, trained
        self.store, self.labels, self.echo, self.every = store, labels, echo, every
        self.running: dict[str, float | None] = {}     # cell -> its last top-1
        self.epoch_seconds: list[float] = []
        self.best: tuple[float, str] | None = None
        self.started: dict[str, float] = {}
        self.last_line = float("-inf")
        # the bar's own rate/ETA would count resumed epochs as instant: ours only
        self.bar = (tqdm(total=sum(planned.values()), initial=sum(done.values()),
                         bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} epochs",
                         dynamic_ncols=True) if tty else None)

    # --- what is shown -------------------------------------------------------------------
    def eta(self) -> float | None:
        """Seconds left: epochs left over the cells running in parallel, at the median
        measured epoch time."""
        if not self.epoch_seconds:
            return None
        left = sum(self.planned[c] - self.done.get(c, 0) for c in self.planned)
        return left * statistics.median(self.epoch_seconds[-50:]) / max(1, len(self.running))

    def state(self) -> str:
        eta = self.eta()
        cells = "; ".join(f"{cid} {self.done.get(cid, 0)}/{self.planned.get(cid, '?')}"
                          + ("" if top1 is None else f" top1 {top1:.2f}")
                          for cid, top1 in self.running.items())
        return (f"{self.finished}/{self.cells} finished | {len(self.running)} running | "
                f"{self.failed} failed | ETA {'-' if eta is None else duration(eta)}"
                + (f" | {cells}" if cells else ""))

    def event(self, text: str) -> None:
        best = f" | best top1 {self.best[0]:.2f} ({self.best[1]})" if self.best else ""
        line = (f"[{self.finished}/{self.cells} finished | {len(self.running)} running | "
                f"{self.failed} failed{best}] {text}")
        if self.bar is not None:
            self.bar.write(line)
        else:
            self.echo(line)

    def _show(self) -> None:
        if self.bar is not None:
            self.bar.n = sum(self.done.values())
            self.bar.set_description_str(self.state(), refresh=True)
        elif time.monotonic() - self.last_line >= self.every:
            self.last_line = time.monotonic()
            self.echo(f"progress: {self.state()}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    # --- Tune's events -------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        cid = trial_name(trial)
        self.running[cid] = None
        self.started[cid] = time.time()
        self.event(f"start {cid}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        cid = trial_name(trial)
        if result.get("global_epoch") is None:
            return
        self.done[cid] = result["global_epoch"] + 1
        self.running[cid] = result.get("top1")
        self.epoch_seconds.append(result["seconds"])
        self._show()

    def on_trial_recover(self, iteration, trials, trial, **info):
        cid = trial_name(trial)
        self.running.pop(cid, None)
        self.event(f"retry {cid}: its trial process died (attempt {trial.num_failures + 1}); "
                   "it resumes from its checkpoint")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._ended(trial, raised=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._ended(trial, raised=True)

    def _ended(self, trial, raised: bool) -> None:
        cid = trial_name(trial)
        self.running.pop(cid, None)
        self.planned.pop(cid, None)   # nothing left to wait for in the ETA
        record = CellRecord(self.store / cid)   # as the trial left it
        status = record.progress
        result = {"error": record.damage} if status == "damaged" else record.result
        result = result or trial.last_result or {}
        seconds = time.time() - self.started.pop(cid, time.time())
        if status == "finished" and not raised:
            self.finished += 1
            top1 = result.get("top1")   # final-epoch top-1, as the leaderboard
            if top1 is not None and (self.best is None or top1 > self.best[0]):
                self.best = (top1, self.labels.get(cid, cid))
            self.event(f"finished {cid}: top1 {result.get('top1', float('nan')):.2f} "
                       f"in {seconds:.0f} s")
        else:
            self.failed += 1
            error = result.get("error") or "its trial process died too often (see Ray's logs)"
            self.event(f"FAILED {cid}: {error}")
        self._show()
