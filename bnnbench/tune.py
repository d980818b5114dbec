"""Run a grid's cells as Ray Tune trials, one trial per cell, into the run store.

The run store, not Ray's experiment state, is the source of truth: before each run the
driver reads every cell's folder and schedules only the cells that are not finished (failed
ones only with `retry_failed`), so rerunning the same command after a crash or a kill skips
finished cells and lets `train_cell` continue interrupted ones from their checkpoints.

Ray: by default the command starts a local Ray sized to the machine (no dashboard, workers'
output not forwarded); `address` joins an existing cluster, in which case the run store must be
a path on storage shared by every node (the workers write their cells there and the driver
reads them back). A trial gets `cpus_per_trial` CPUs and `gpus_per_trial` GPUs (fractions
allowed: 0.5 runs two cells per GPU); on a cluster without GPUs cells run on the CPU and
nothing waits for one. Data travels as paths inside the cell config (`data_dir`), and plugin
files as paths (`plugins`), which the worker imports before resolving the binarizer.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from . import recipe as recipes, runstore
from .cell import CellConfig, stale_reason
from .errors import BnnbenchError
from .grid import Grid, describe

RAY_DIR = ".ray"                  # Ray Tune's own files, inside the store, removed after a run


def default_store(grid: Grid) -> Path:
    return Path("results") / "runs" / grid.name


# --- the trial ---------------------------------------------------------------------------
def run_cell(config: dict) -> None:
    """Ray Tune trainable: train one cell into its folder. It never raises: a failure is
    recorded in the cell's result.json (status "failed", error) and the grid goes on."""
    from ray import tune

    config = config["job"]
    out_dir = Path(config["out_dir"])
    cfg = CellConfig.from_dict(config["cell"])
    try:
        from .train import train_cell
        result = train_cell(cfg, out_dir, progress=False,
                            threads=int(config["threads"]) if config.get("threads") else None)
    except runstore.CellBusy as exc:   # another process trains it: write nothing into it
        result = {"status": "busy", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure of one cell is that cell's record
        if runstore.status(out_dir) != "failed":
            # train_cell records its own failures; this one came before it could (e.g. a
            # plugin file that fails to import on this worker)
            runstore.record_failure(out_dir, cfg.to_dict(), config["cell_id"], exc)
        result = runstore.read_json(out_dir / runstore.RESULT)
    tune.report({k: result.get(k) for k in ("status", "top1", "best_top1", "seconds")}
                | {"cell_id": config["cell_id"]})


def _trial_dirname(trial) -> str:
    return trial.config["job"]["cell_id"]


def _trial_name(trial) -> str:
    return trial.config["job"]["cell_id"]


# --- what to run -------------------------------------------------------------------------
def cell_status(store: Path, cell: CellConfig) -> str:
    """finished | failed | partial (has a checkpoint or metrics) | new | damaged (a record
    cannot be read) | stale (trained with binarizer code that has changed since)."""
    folder = Path(store) / cell.cell_id()
    status = runstore.status(folder)
    if status in ("new", "damaged") or not (folder / runstore.CONFIG).exists():
        return status
    return "stale" if stale_reason(runstore.read_json(folder / runstore.CONFIG)) else status


def cell_table(grid: Grid, store: Path):
    """One row per cell of the grid with its status and result in the store (a DataFrame);
    `replaces` names the stale folders of the same cell that it supersedes."""
    import pandas as pd

    stale = stale_folders(store)
    rows = []
    for cell in grid.cells:
        cid = cell.cell_id()
        folder = Path(store) / cid
        status = cell_status(store, cell)
        damage = runstore.damage(folder) if status == "damaged" else None
        result = {"error": damage} if damage else runstore.read_result(folder)
        epochs_done = result.get("epochs")
        if status == "partial":
            epochs_done = len(runstore.read_metrics(folder / runstore.METRICS))
        rows.append({
            "cell": cid, "dataset": cell.dataset, "arch": cell.arch, "binarizer": describe(cell),
            "seed": cell.seed, "status": status, "top1": result.get("top1"),
            "best_top1": result.get("best_top1"), "epochs": epochs_done,
            "planned": sum(r["epochs"] for _, r in recipes.stage_recipes(cell)),
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


def _superseded(cell: CellConfig, stale: dict[str, dict]) -> str:
    """The stale folders of this cell: same dataset, arch, binarizer and seed, and recorded with
    the binarizer parameters this cell sets."""
    spec = cell.resolved().binarizer
    names = []
    for name, old in stale.items():
        old_spec = old.get("binarizer")
        old_spec = old_spec if isinstance(old_spec, dict) else {"name": old_spec}
        if ((old.get("dataset"), old.get("arch"), old.get("seed")) == (cell.dataset, cell.arch,
                                                                       cell.seed)
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
    for col in ("error", "replaces"):   # only when some cell has one
        if col in shown and not shown[col].astype(bool).any():
            shown = shown.drop(columns=col)
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda v: "-" if v != v else f"{v:.2f}")
        else:
            shown[col] = shown[col].astype(object).where(shown[col].notna(), "-")
    return shown.to_string(index=False)


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


# --- progress ----------------------------------------------------------------------------
def _progress_callback(total: int, done: int, failed: int, store: Path, labels: dict, echo):
    from ray import tune

    class Progress(tune.Callback):
        """One line per change: cells finished / running / failed, and the best top-1."""

        def __init__(self):
            self.done, self.failed, self.running = done, failed, 0
            self.best: tuple[float, str] | None = None
            self.started: dict[str, float] = {}

        def _line(self, event: str) -> None:
            best = f" | best top1 {self.best[0]:.2f} ({self.best[1]})" if self.best else ""
            echo(f"[{self.done}/{total} finished | {self.running} running | "
                 f"{self.failed} failed{best}] {event}")

        def on_trial_start(self, iteration, trials, trial, **info):
            cid = _trial_name(trial)
            self.running += 1
            self.started[cid] = time.time()
            self._line(f"start {cid}")

        def _ended(self, trial, raised: bool) -> None:
            cid = _trial_name(trial)
            self.running = max(0, self.running - 1)
            folder = store / cid
            status = runstore.status(folder)
            result = ({"error": runstore.damage(folder)} if status == "damaged"
                      else runstore.read_result(folder) or trial.last_result or {})
            seconds = time.time() - self.started.pop(cid, time.time())
            if status == "finished" and not raised:
                self.done += 1
                top1 = result.get("top1")   # final-epoch top-1, as the leaderboard
                if top1 is not None and (self.best is None or top1 > self.best[0]):
                    self.best = (top1, labels.get(cid, cid))
                self._line(f"finished {cid}: top1 {result.get('top1', float('nan')):.2f} "
                           f"in {seconds:.0f} s")
            else:
                self.failed += 1
                error = result.get("error") or "the trial died (see Ray's logs)"
                self._line(f"FAILED {cid}: {error}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._ended(trial, raised=False)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._ended(trial, raised=True)

    return Progress()


# --- Ray ---------------------------------------------------------------------------------
def _quiet_ray_env() -> None:
    # before Ray is imported: no CSV/JSON/TensorBoard trial loggers (the run store has it all),
    # no per-iteration tables, no "Tip:" banners
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


def _start_ray(address: str | None) -> bool:
    """Start a local Ray or join `address`; False if Ray was already up (left running)."""
    import ray

    if ray.is_initialized():
        return False
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    except ConnectionError as exc:
        raise BnnbenchError(f"cannot join the Ray cluster at {address!r}: {exc} (start it with "
                            "`ray start --head` or leave out --address)") from None
    return True


def _resources(cpus_per_trial, gpus_per_trial, joined: bool, echo) -> tuple[float, float]:
    import ray

    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 1.0), total.get("GPU", 0.0)
    if gpus_per_trial is None:
        gpus_per_trial = 1.0 if gpus else 0.0
    elif gpus_per_trial > 0 and not gpus:
        echo(f"note: the Ray cluster has no GPU; --gpus-per-trial {gpus_per_trial:g} ignored, "
             "cells run on the CPU")
        gpus_per_trial = 0.0
    if gpus_per_trial < 0 or (cpus_per_trial is not None and cpus_per_trial <= 0):
        raise BnnbenchError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if cpus_per_trial is None:
        slots = int(gpus // gpus_per_trial) if gpus_per_trial else int(cpus)
        cpus_per_trial = float(max(1, int(cpus // max(1, slots))))
    if not joined:   # a cluster may grow (autoscaler); a local Ray will not
        if gpus_per_trial > gpus:
            raise BnnbenchError(f"--gpus-per-trial {gpus_per_trial:g} exceeds this machine's "
                                f"{gpus:g} GPU(s)")
        if cpus_per_trial > cpus:
            raise BnnbenchError(f"--cpus-per-trial {cpus_per_trial:g} exceeds this machine's "
                                f"{cpus:g} CPUs")
    return float(cpus_per_trial), float(gpus_per_trial)


def run_grid(grid: Grid, store: Path | str, *, address: str | None = None,
             cpus_per_trial: float | None = None, gpus_per_trial: float | None = None,
             max_concurrent: int | None = None, retry_failed: bool = False,
             rerun_stale: bool = False, echo: Callable[[str], None] = print):
    """Run the grid's unfinished cells with Ray Tune; return `cell_table` afterwards.

    A cell whose binarizer code changed since it trained ("stale") is kept as it is and left
    out of reports; with `rerun_stale` its folder is renamed <id>.stale-<time> (kept, still
    reported as stale) and the cell trains again."""
    store = Path(store).expanduser().resolve()
    if max_concurrent is not None and max_concurrent < 1:
        raise BnnbenchError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    with _locked(store) as writable:
        statuses = {cell.cell_id(): cell_status(store, cell) for cell in grid.cells}
        finished = sum(s == "finished" for s in statuses.values())
        failed = [cid for cid, s in statuses.items() if s == "failed"]
        unreadable = [cid for cid, s in statuses.items()
                      if s == "damaged" and not _config_readable(store / cid)]
        stale = [cid for cid, s in statuses.items() if s == "stale"]
        todo = [c for c in grid.cells if statuses[c.cell_id()] in ("new", "partial", "damaged")
                and c.cell_id() not in unreadable
                or (retry_failed and statuses[c.cell_id()] == "failed")
                or (rerun_stale and statuses[c.cell_id()] == "stale")]
        partial = sum(statuses[c.cell_id()] == "partial" for c in todo)
        echo(f"grid {grid.name}: {len(grid.cells)} cells in {store} — {finished} finished, "
             f"{len(failed)} failed{'' if retry_failed else ' (kept; --retry-failed reruns them)'}"
             f", {len(todo)} to run ({partial} resume from a checkpoint)")
        stale_text = stale_line(store)
        if stale_text:
            echo(stale_text)
        for line in damage_lines(store, [c for c, s in statuses.items() if s == "damaged"]):
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
        if not todo:
            return cell_table(grid, store)
        if retry_failed:
            for cid in failed:
                _forget_failure(store / cid)

        _quiet_ray_env()
        joined = bool(address)
        started = _start_ray(address)
        try:
            cpt, gpt = _resources(cpus_per_trial, gpus_per_trial, joined, echo)
            echo(f"ray: {_describe_cluster()}; each cell gets {cpt:g} CPU, {gpt:g} GPU"
                 + (f", at most {max_concurrent} at a time" if max_concurrent else ""))
            _fit(grid, todo, store, cpt, gpt, max_concurrent,
                 done=finished, failed=0 if retry_failed else len(failed), echo=echo)
        finally:
            if started:
                import ray
                ray.shutdown()
        return cell_table(grid, store)


def damage_lines(store: Path, cell_ids) -> list[str]:
    """For each damaged cell, one line: what is wrong and what `run` does about it."""
    out = []
    for cid in cell_ids:
        folder = Path(store) / cid
        if _config_readable(folder):
            out.append(f"repairing {cid}: {runstore.damage(folder)}; its records are rewritten "
                       "from its checkpoint")
        else:
            out.append(f"cannot read {cid}: {runstore.damage(folder)}; restore that file, or "
                       "delete the folder to train the cell again")
    return out


def _config_readable(folder: Path) -> bool:
    """Whether a cell folder's config.json reads back (then train_cell can verify the cell
    and rebuild its other records from its checkpoint)."""
    try:
        return isinstance(runstore.read_json(folder / runstore.CONFIG), dict)
    except BnnbenchError:
        return False


def _forget_failure(folder: Path) -> None:
    """Let a failed cell run again: drop its result (and a stub config); keep its checkpoint."""
    (folder / runstore.RESULT).unlink(missing_ok=True)
    (folder / runstore.ERROR_LOG).unlink(missing_ok=True)
    config = folder / runstore.CONFIG
    if config.exists() and "stages" not in runstore.read_json(config):
        config.unlink()


def _describe_cluster() -> str:
    import ray

    total = ray.cluster_resources()
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    return (f"{nodes} node{'s' if nodes != 1 else ''}, {total.get('CPU', 0):g} CPUs, "
            f"{total.get('GPU', 0):g} GPUs")


def _fit(grid: Grid, todo: list[CellConfig], store: Path, cpt: float, gpt: float,
         max_concurrent: int | None, *, done: int, failed: int, echo) -> None:
    from ray import tune

    threads = max(1, int(cpt))
    jobs = []
    for cell in todo:
        if gpt == 0 and cell.device is None:
            cell = CellConfig.from_dict({**cell.to_dict(), "device": "cpu"})
        jobs.append({"cell": cell.to_dict(), "cell_id": cell.cell_id(),
                     "out_dir": str(store / cell.cell_id()), "threads": threads})
    labels = {c.cell_id(): f"{c.dataset} {c.arch} {describe(c)} s{c.seed}" for c in todo}
    ray_dir = store / RAY_DIR
    shutil.rmtree(ray_dir, ignore_errors=True)   # leftovers of a killed run: never read
    tuner = tune.Tuner(
        tune.with_resources(run_cell, {"cpu": cpt, "gpu": gpt}),
        param_space={"job": tune.grid_search(jobs)},
        # reuse_actors: a worker keeps torch imported between cells (seconds per cell on a CPU)
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                    trial_name_creator=_trial_name,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=f"{grid.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}",
            storage_path=str(ray_dir), verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
            callbacks=[_progress_callback(len(grid.cells), done, failed, store, labels, echo)]),
    )
    tuner.fit()   # Ctrl-C: the CLI says how to resume; the run store keeps what finished
    shutil.rmtree(ray_dir, ignore_errors=True)


# --- the summary -------------------------------------------------------------------------
def leaderboard_text(grid: Grid, store: Path) -> str:
    """The report's leaderboard (markdown) of the grid's cells."""
    from . import report

    cells = report.collect_cells([store], expected=grid.cells)
    return report.to_markdown(report.leaderboard(cells, counts=False))
