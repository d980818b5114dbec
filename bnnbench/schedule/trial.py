"""A cell as a Ray Tune trial: the trainable of `bnnbench run`, and `bnnbench train --log`.

The trial trains the cell into its run-store folder with `train_cell` and reports each epoch's
metrics.jsonl row to Tune as it is checkpointed, so that the driver's progress, Tune's
schedulers and its logger callbacks see every epoch while the run store stays the record.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import BnnbenchError
from ..experiment.cell import CellConfig
from ..experiment.resolve import ResolvedCell
from ..store import records, runstore
from ..store.reader import CellRecord
from . import cluster, tracking

RAY_DIR = ".ray"                  # Ray Tune's own files, removed after a run


def trial_name(trial) -> str:
    """Trials and their folders are named by their cell's id."""
    return trial.config["job"]["cell_id"]


def run_cell(config: dict) -> None:
    """Ray Tune trainable: train one cell into its folder, reporting each epoch to Tune. A
    failure inside the cell is recorded in its result.json (status "failed") and the trial
    ends normally, so Tune does not retry it; only a dying process is retried."""
    from ray import tune

    job = config["job"]
    out_dir = Path(job["out_dir"])
    try:
        if job["marker"] is not None:   # `bnnbench train --log` runs on this machine
            cluster.check_store(out_dir.parent, job["marker"])
    except BnnbenchError as exc:   # nothing can be recorded where the driver does not look
        tune.report({"status": "failed", "error": str(exc), "cell_id": job["cell_id"]})
        return
    reported = []

    def report(row: dict, total: int) -> None:
        tune.report({**row, "status": "running", "cell_id": job["cell_id"],
                     "epochs_planned": total, "timesteps_total": row["global_epoch"] + 1})
        reported.append(row["global_epoch"] + 1 == total)

    result = _train(CellConfig.from_dict(job["cell"]), out_dir, job, report)
    if result.get("status") != "finished" or not reported or not reported[-1]:
        tune.report({k: result.get(k) for k in ("status", "top1", "best_top1", "seconds",
                                                 "error")} | {"cell_id": job["cell_id"]})


def _train(cfg: CellConfig, out_dir: Path, job: dict, report) -> dict:
    """train_cell's result, or the failure it recorded (never raises)."""
    try:
        from ..engine.train import train_cell
        return train_cell(cfg, out_dir, progress=False, on_epoch=report,
                          threads=int(job["threads"]) if job.get("threads") else None)
    except runstore.CellBusy as exc:   # another process trains it: write nothing into it
        return {"status": "busy", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure of one cell is that cell's record
        if CellRecord(out_dir).progress != "failed":
            # train_cell records its own failures; this one came before it could (e.g. a
            # plugin file that fails to import on this worker)
            records.write_failure(out_dir, cfg.to_dict(), job["cell_id"], exc)
        return CellRecord(out_dir).result


def train_logged(cell: ResolvedCell, out_dir: Path, log: tuple[str, ...], *,
                 threads: int | None = None) -> dict:
    """`bnnbench train --log`: the one cell as a Tune trial on a local Ray, so that Tune's
    logger callbacks get its epochs (TensorBoard under <out>/tensorboard/); result.json's
    dict, or the cell's failure raised as one line."""
    import torch

    tracking.check(log)
    cluster.quiet_ray_env()
    started = cluster.connect(None)
    try:
        from ray import tune

        job = {"cell": cell.given.to_dict(), "cell_id": cell.id, "out_dir": str(out_dir),
               "threads": threads, "marker": None}
        gpus = 1 if cell.config.device != "cpu" and torch.cuda.is_available() else 0
        storage = out_dir / (tracking.TENSORBOARD_DIR if "tensorboard" in log else RAY_DIR)
        tune.Tuner(tune.with_resources(run_cell, {"cpu": 1, "gpu": gpus}),
                   param_space={"job": job},
                   tune_config=tune.TuneConfig(trial_name_creator=trial_name,
                                               trial_dirname_creator=trial_name),
                   run_config=tune.RunConfig(
                       name=cell.id, storage_path=str(storage), verbose=0,
                       callbacks=tracking.callbacks(log, cell.id, out_dir))).fit()
    finally:
        if started:
            import ray
            ray.shutdown()
        shutil.rmtree(out_dir / RAY_DIR, ignore_errors=True)
    result = CellRecord(out_dir).result
    if result.get("status") != "finished":
        raise BnnbenchError(f"the cell did not finish: {result.get('error') or 'see Ray logs'}")
    return result
