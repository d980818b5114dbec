"""Run a grid's cells as Ray Tune trials, one trial per cell, into the run store.

The run store, not Ray's experiment state, is the source of truth: before each run the
driver reads every cell's folder and schedules only the cells that are not finished (failed
ones only with `retry_failed`), so rerunning the same command after a crash or a kill skips
finished cells and lets `train_cell` continue interrupted ones from their checkpoints.

Ray (bnnbench.cluster): by default the command starts a local Ray sized to the machine;
`address` joins an existing cluster, in which case the run store must be a path on storage
shared by every node (each trial checks the driver's marker there before it trains). Each
trial (bnnbench.trial) reports every epoch to Tune: the driver's live progress
(bnnbench.progress), Tune's schedulers and logger callbacks (bnnbench.tracking) see it. A
trial whose process dies (node lost, OOM kill) is restarted by Tune up to `max_failures`
times and resumes from the cell's checkpoint; a cell that fails inside itself (NaN loss,
plugin error) is recorded and not retried. A trial gets `cpus_per_trial` CPUs and
`gpus_per_trial` GPUs (fractions allowed: 0.5 runs two cells per GPU); on a cluster without
GPUs cells run on the CPU and nothing waits for one. Data travels as paths inside the cell
config (`data_dir`), and plugin files as paths (`plugins`), which the worker imports before
resolving the binarizer.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BnnbenchError
from ..experiment.grid import Grid, describe
from ..experiment.resolve import ResolvedCell
from ..store import runstore
from ..store.reader import CellRecord, RunStore
from . import cluster, tracking, trial
from .status import cell_table, damage_lines, stale_line
from .waves import waves


def default_store(grid: Grid) -> Path:
    return Path("results") / "runs" / grid.name


# --- the store lock ----------------------------------------------------------------------
@contextlib.contextmanager
def _locked(store: Path):
    """One driver per run store at a time (released by the OS even if the driver is killed).
    Yields whether the store is writable: a read-only one (finished grids on read-only media)
    can still be read and reported, and nothing can write to it, so it needs no lock."""
    store.mkdir(parents=True, exist_ok=True)
    if not os.access(store, os.W_OK):
        yield False
        return
    with runstore.folder_lock(store, BnnbenchError(
            f"another `bnnbench run` is using the run store {store}; wait for it to end or "
            "choose another --out")):
        yield True


@dataclass(frozen=True)
class RayOptions:
    """How the cells run on Ray (the `run` command's options)."""
    address: str | None = None           # a cluster to join; None: RAY_ADDRESS or a local Ray
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    max_concurrent: int | None = None
    max_failures: int = 3                # restarts of a trial whose process died
    progress_every: float = 60.0         # seconds between progress lines (not on a terminal)
    log: tuple[str, ...] = ()            # tracking.LOGGERS

    def check(self) -> "RayOptions":
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise BnnbenchError(f"--max-concurrent must be >= 1, got {self.max_concurrent}")
        if self.max_failures < 0:
            raise BnnbenchError(f"--max-failures must be >= 0, got {self.max_failures}")
        if self.progress_every < 0:
            raise BnnbenchError(f"--progress-every must be >= 0, got {self.progress_every}")
        tracking.check(self.log)
        return self


def run_grid(grid: Grid, store: Path | str | RunStore, *, retry_failed: bool = False,
             rerun_stale: bool = False, echo: Callable[[str], None] = print,
             **ray_options):
    """Run the grid's unfinished cells with Ray Tune; return `cell_table` afterwards.
    `store`: its path, or the RunStore a caller reads it through (then each of its files is
    read once for the caller too). `ray_options`: the fields of RayOptions.

    A cell whose binarizer code changed since it trained ("stale") is kept as it is and left
    out of reports; with `rerun_stale` its folder is renamed <id>.stale-<time> (kept, still
    reported as stale) and the cell trains again."""
    runs = store if isinstance(store, RunStore) else RunStore(Path(store).expanduser().resolve())
    store = runs.path
    options = RayOptions(**ray_options).check()
    with _locked(store) as writable:
        statuses = {cell.id: runs[cell.id].status for cell in grid.cells}
        finished = sum(s == "finished" for s in statuses.values())
        failed = [cid for cid, s in statuses.items() if s == "failed"]
        unreadable = [cid for cid, s in statuses.items()
                      if s == "damaged" and not runs[cid].config_readable]
        stale = [cid for cid, s in statuses.items() if s == "stale"]
        todo = [c for c in grid.cells if statuses[c.id] in ("new", "partial", "damaged")
                and c.id not in unreadable
                or (retry_failed and statuses[c.id] == "failed")
                or (rerun_stale and statuses[c.id] == "stale")]
        partial = sum(statuses[c.id] == "partial" for c in todo)
        echo(f"grid {grid.name}: {len(grid.cells)} cells in {store} — {finished} finished, "
             f"{len(failed)} failed{'' if retry_failed else ' (kept; --retry-failed reruns them)'}"
             f", {len(todo)} to run ({partial} resume from a checkpoint)")
        stale_text = stale_line(runs)
        if stale_text:
            echo(stale_text)
        for line in damage_lines(runs, [c for c, s in statuses.items() if s == "damaged"]):
            echo(line)
        if stale and not rerun_stale:
            echo(f"{len(stale)} cell(s) of this grid trained with binarizer code that has changed "
                 "since (kept, left out of reports); --rerun-stale trains them again")
        if todo and not writable:
            raise BnnbenchError(f"the run store {store} is read-only and {len(todo)} cell(s) "
                                "still need training: make it writable or choose another --out")
        if rerun_stale:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            for cid in stale:
                (store / cid).rename(store / f"{cid}.stale-{stamp}")
            runs.refresh(stale)
        if not todo:
            return cell_table(grid, runs)
        if retry_failed:
            for cid in failed:
                _forget_failure(runs[cid])
            runs.refresh(failed)

        cluster.quiet_ray_env()
        started = cluster.connect(options.address)
        try:
            now = {c.id: runs[c.id].progress for c in grid.cells}
            for wave in waves(todo, runs, echo):   # teachers before their students
                counts = list(now.values())
                _fit(grid, wave, runs, options, finished=counts.count("finished"),
                     failed=counts.count("failed"), echo=echo)
                runs.refresh([c.id for c in wave])
                now.update({c.id: runs[c.id].progress for c in wave})
        finally:
            if started:
                import ray
                ray.shutdown()
        return cell_table(grid, runs)


def _forget_failure(record: CellRecord) -> None:
    """Let a failed cell run again: drop its result (and a stub config); keep its checkpoint."""
    stub = record.config_readable and "stages" not in record.config
    (record.path / runstore.RESULT).unlink(missing_ok=True)
    (record.path / runstore.ERROR_LOG).unlink(missing_ok=True)
    if stub:
        (record.path / runstore.CONFIG).unlink()


def _fit(grid: Grid, todo: list[ResolvedCell], runs: RunStore, options: RayOptions, *,
         finished: int, failed: int, echo) -> None:
    from ray import tune

    store = runs.path
    joined = bool(options.address or os.environ.get("RAY_ADDRESS"))
    cpt, gpt = cluster.resources(options.cpus_per_trial, options.gpus_per_trial, joined, echo)
    echo(f"ray: {cluster.describe()}; each cell gets {cpt:g} CPU, {gpt:g} GPU"
         + (f", at most {options.max_concurrent} at a time" if options.max_concurrent else "")
         + f"; a dying trial is retried up to {options.max_failures} times")
    marker = cluster.mark_store(store)
    jobs = [_job(cell, store, gpt, max(1, int(cpt)), marker) for cell in todo]
    progress = _progress(grid, todo, runs, options, finished, failed, echo)
    tensorboard = "tensorboard" in options.log   # one run per cell across reruns:
    name = grid.name if tensorboard else f"{grid.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    ray_dir = store / (tracking.TENSORBOARD_DIR if tensorboard else trial.RAY_DIR)
    if not tensorboard:
        shutil.rmtree(ray_dir, ignore_errors=True)   # leftovers of a killed run: never read
    tuner = tune.Tuner(
        tune.with_resources(trial.run_cell, {"cpu": cpt, "gpu": gpt}),
        param_space={"job": tune.grid_search(jobs)},
        # reuse_actors: a worker keeps torch imported between cells (seconds per cell on a CPU)
        tune_config=tune.TuneConfig(max_concurrent_trials=options.max_concurrent,
                                    reuse_actors=True, trial_name_creator=trial.trial_name,
                                    trial_dirname_creator=trial.trial_name),
        run_config=tune.RunConfig(
            name=name, storage_path=str(ray_dir), verbose=0,
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            callbacks=[progress, *tracking.callbacks(options.log, grid.name, store)]),
    )
    # a trial's dying process is named by the progress line (retry/FAILED), not a traceback
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    try:
        tuner.fit()   # Ctrl-C, SIGTERM: the CLI says how to resume; finished cells are kept
    finally:
        progress.close()
    if tensorboard:
        echo(f"TensorBoard: tensorboard --logdir {ray_dir / grid.name}")
    else:
        shutil.rmtree(ray_dir, ignore_errors=True)


def _job(cell: ResolvedCell, store: Path, gpt: float, threads: int, marker: str) -> dict:
    """What a trial needs to train `cell` (on the CPU when the trials get no GPU: the device
    is no part of the cell's id)."""
    config = cell.given.to_dict()
    if gpt == 0 and cell.given.device is None:
        config["device"] = "cpu"
    return {"cell": config, "cell_id": cell.id, "marker": marker,
            "out_dir": str(store / cell.id), "threads": threads}


def _progress(grid: Grid, todo: list[ResolvedCell], runs: RunStore, options: RayOptions,
              finished: int, failed: int, echo):
    from . import progress as live  # imports Ray: only once Ray's environment is set

    planned = {c.id: c.planned_epochs for c in todo}
    # a damaged cell's epochs are rewritten from its checkpoint when it trains: none counted
    done = {cid: len(runs[cid].metrics) for cid in planned
            if not runs[cid].damage and runs[cid].metrics}
    labels = {c.id: f"{c.config.dataset} {c.config.arch} {describe(c.given)} s{c.config.seed}"
              for c in todo}
    return live.GridProgress(
        cells=len(grid.cells), finished=finished, failed=failed, planned=planned, done=done,
        store=runs.path, labels=labels, echo=echo, every=options.progress_every,
        tty=sys.stdout.isatty())


# --- the summary -------------------------------------------------------------------------
def leaderboard_text(grid: Grid, runs: RunStore) -> str:
    """The report's leaderboard (markdown) of the grid's cells."""
    from ..report import leaderboard as report

    cells = report.collect_cells([runs], expected=grid.cells)
    return report.to_markdown(report.leaderboard(cells, counts=False))
