"""Run stores with known numbers, written through the store's writers as train.py writes them
(for the report's tests: test_report, test_stats, test_render, test_figures)."""
from __future__ import annotations

from pathlib import Path

from bnnbench.binarizers.biper import qe_closed_form
from bnnbench.engine.train import TrainingDiverged
from bnnbench.experiment.cell import CellConfig
from bnnbench.experiment.resolve import ResolvedCell, resolve
from bnnbench.store import records

VARIANT = {"resnet20": "bireal-shortcut", "resnet18": "standard-shortcut", "vgg_small": "plain"}
BIPER = {"name": "biper", "omega0": 20.0}


def write_cell(store: Path, *, dataset="cifar10", arch="resnet20", binarizer=BIPER, seed=0,
               top1=None, status="finished", epochs=4, b=0.05, device="cuda",
               seconds=3600.0, metrics=True, stage_names=("binary",), init_from="final",
               steps=None) -> Path:
    """One run folder as train.py writes it (through the store's writers), with the given
    final top-1."""
    binarizer = dict(binarizer)
    cell = resolve(CellConfig(dataset=dataset, arch=arch, binarizer=binarizer, seed=seed))
    cell_dir = store / f"{dataset}-{arch}-{binarizer['name']}-{binarizer.get('omega0', '')}-s{seed}"
    per_stage = epochs // len(stage_names)
    stages = [(s, {"epochs": per_stage, "lr": 0.1, "init_from": init_from,
                   "binarizer": {"reg_tau": 0.01 * (i + 1)}}) for i, s in enumerate(stage_names)]
    model = {"params": 270522, "variant": ("bireal-shortcut" if dataset == "imagenet"
                                           else VARIANT[arch]),
             "family": "imagenet" if dataset == "imagenet" else "cifar"}
    env = {"bnnbench": "0.1.0", "git": None, "torch": "2", "torchvision": "0", "python": "3.11",
           "device": "NVIDIA H100" if device == "cuda" else "cpu"}
    records.write_config(cell_dir, records.config_record(
        cell, model=model, env=env, stages=stages, created="2025-01-01T00:00:00+00:00"))
    omega0 = binarizer.get("omega0")
    qe = qe_closed_form(b * omega0) if omega0 else None
    if metrics and top1 is not None:
        rows = [{"stage": stage_names[min(e // per_stage, len(stage_names) - 1)],
                 "epoch": e % per_stage, "global_epoch": e, "lr": 0.1, "train_loss": 1.0,
                 "train_top1": 50.0, "test_loss": 1.0, "top1": top1 - (epochs - 1 - e) * 5.0,
                 "top5": 99.0, "seconds": seconds / epochs, "images_per_s": 1000.0,
                 "binarizer/qe": qe, "binarizer/b": b} for e in range(epochs)]
        records.write_metrics(cell_dir, rows)
    if status == "finished":
        records.write_result(cell_dir, records.finished_result(
            top1=top1, top5=99.0, best_top1=top1 + 0.5, best_top5=99.5, params=270522,
            epochs=epochs, steps=steps, seconds=seconds, images_per_s=1000.0,
            binarizer={"binarizer/qe": qe, "binarizer/b": b}, device=device))
    elif status == "failed":
        records.write_failure(cell_dir, cell.config.to_dict(), cell.id, TrainingDiverged("nan"))
    return cell_dir


BIPER_20 = [86.0, 87.0, 88.5]
RECU = [87.0, 88.0]


def make_store(root: Path, *, imagenet: bool = True) -> Path:
    """Cells with known numbers: biper ω0 ∈ {10, 20, 30} (3, 2, 2 seeds), recu (2 finished,
    1 failed), xnor (1 seed), irnet (config only), imagenet biper (1 seed)."""
    two = ("sine", "binary")
    for seed, top1 in enumerate(BIPER_20):
        write_cell(root, seed=seed, top1=top1, b=0.04 + 0.005 * seed, stage_names=two)
    for omega0, accs in ((10.0, [85.0, 85.5]), (30.0, [86.5, 87.5])):
        for seed, top1 in enumerate(accs):
            write_cell(root, binarizer={**BIPER, "omega0": omega0}, seed=seed, top1=top1,
                       b=0.03, stage_names=two)
    for seed, top1 in enumerate(RECU):
        write_cell(root, binarizer={"name": "recu"}, seed=seed, top1=top1, device="cpu",
                   seconds=7200.0)
    write_cell(root, binarizer={"name": "recu"}, seed=2, status="failed")
    write_cell(root, arch="vgg_small", binarizer={"name": "xnor"}, top1=89.0)
    write_cell(root, arch="resnet18", binarizer={"name": "irnet"}, status="new")
    if imagenet:
        write_cell(root, dataset="imagenet", arch="resnet18", binarizer={**BIPER, "omega0": 20.0},
                   top1=60.0, stage_names=two)
    return root


def write_grid_cell(store: Path, cell: ResolvedCell, status: str, top1: float = 50.0) -> Path:
    """The folder a grid's `cell` leaves in `store` once its training ended `status` (finished,
    failed, partial: its first epoch only, new: its config only), through the store's writers,
    one metrics row per planned epoch."""
    folder = store / cell.id
    records.write_config(folder, records.config_record(
        cell, model={"params": 1000, "variant": "bireal-shortcut", "family": "cifar"},
        env={"bnnbench": "0.1.0", "device": "cpu"}))
    epochs = [(stage, e) for stage, recipe in cell.stages for e in range(recipe["epochs"])]
    rows = [{"stage": stage, "epoch": e, "global_epoch": i, "lr": 0.1, "train_loss": 1.0,
             "train_top1": top1, "test_loss": 1.0, "top1": top1, "top5": 90.0, "seconds": 1.0,
             "images_per_s": 100.0, "steps": 2} for i, (stage, e) in enumerate(epochs)]
    if status in ("finished", "failed", "partial"):
        records.write_metrics(folder, rows if status == "finished" else rows[:1])
    if status == "finished":
        records.write_result(folder, records.result_record(rows, 1000, "cpu"))
    elif status == "failed":
        records.write_failure(folder, cell.config.to_dict(), cell.id, TrainingDiverged("nan"))
    return folder
