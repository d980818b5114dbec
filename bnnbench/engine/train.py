"""Train one grid cell end to end and leave its complete record in a run folder.

The loop is written for speed: data already on the device (bnnbench.data), channels_last
(faster on CPUs and GPUs alike), bf16 autocast on CUDA, optional torch.compile, and no host
synchronisation inside an epoch (losses and hits accumulate on the device and are read once
per epoch). Every epoch ends with an atomic checkpoint; each epoch's data order comes from a
generator seeded by (seed, stage, epoch), so a killed cell resumed from its checkpoint ends
with the same numbers as an uninterrupted run.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..api import layers as bnn
from ..data import load_dataset
from ..errors import ENVIRONMENT, BnnbenchError
from ..experiment import recipe as recipes
from ..experiment.cell import CellConfig, comparable
from ..experiment.resolve import ResolvedCell, resolve
from ..models import build_model
from ..store import records, runstore
from ..store.reader import CellRecord
from . import binarizer_state
from .device import resolve_device
from .distiller import Distiller, stage_distiller
from .evaluate import eval_batch_size, evaluate
from .optim import make_optimizer
from .teachers import require_finished


class TrainingDiverged(BnnbenchError):
    """The loss became NaN or infinite: the cell stops and keeps its record."""


def train_cell(cfg: CellConfig | ResolvedCell, out_dir: Path | str, *, progress: bool = True,
               threads: int | None = None, teachers: dict[str, Path] | None = None,
               on_epoch: Callable[[dict, int], None] | None = None) -> dict:
    """Train `cfg` (a CellConfig, resolved here, or the ResolvedCell a caller holds) into
    `out_dir` (resuming from its checkpoint) and return result.json's dict.

    A finished cell is not trained again. A failing cell writes result.json with status
    "failed" and its error, then re-raises; an interrupted one (Ctrl-C, kill) keeps its last
    checkpoint so that the next call continues it. A cell whose result.json or metrics.jsonl
    is damaged gets them rewritten from its checkpoint (no epoch is trained twice).
    `threads`: torch's CPU threads for this process (a busy machine trains much faster with
    fewer threads than torch's default; a grid sets it per cell).
    `on_epoch(row, total_epochs)`: called with each epoch's metrics.jsonl row once it is
    checkpointed (a Ray trial reports it to Tune; the run store stays the record).
    A cell that distils starts only when each teacher's record is finished (teachers.
    TeacherNotReady otherwise, nothing written): `teachers[id]` or the folder beside `out_dir`.
    """
    out_dir = Path(out_dir)
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise BnnbenchError(f"threads must be a number >= 1, got {threads!r}")
        torch.set_num_threads(threads)
    if out_dir.exists() and not out_dir.is_dir():
        raise BnnbenchError(f"{out_dir} is a file, not a run folder: choose another --out")
    cell = cfg if isinstance(cfg, ResolvedCell) else resolve(cfg)
    resolve_device(cell.config.device)  # a bad device is a user error, before any folder exists
    record = CellRecord(out_dir)
    check_folder(cell, record)
    if record.progress == "finished":   # nothing to write (read-only media too)
        return record.result
    folders = require_finished(cell, out_dir, teachers)
    with runstore.cell_lock(out_dir):
        record = record.refresh()   # another process may have trained it meanwhile
        if record.progress == "finished":
            return record.result
        return _train_locked(cell, record, progress, on_epoch, folders)


def check_folder(cell: ResolvedCell, record: CellRecord) -> None:
    """Refuse a run folder that another config wrote, or that this config wrote with another
    resolved recipe (so another id) or other binarizer code, before touching it."""
    out_dir = record.path
    if not (out_dir / runstore.CONFIG).exists():
        return
    recorded = record.config
    # through CellConfig: a record written before a field existed gets its default
    old = comparable(CellConfig.from_dict(recorded["cell"]).to_dict())
    new = comparable(cell.config.to_dict())
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise BnnbenchError(f"{out_dir} holds a run of another config (differs in: "
                            f"{', '.join(diff)}); refusing to resume it: choose another --out "
                            "or delete that folder")
    reason = record.stale_reason
    if reason == "recipe":
        raise BnnbenchError(f"{out_dir} holds a run of this config trained with another "
                            f"resolved recipe (its id {recorded.get('cell_id')}, today's "
                            f"{cell.id}: the binarizer's recipe or defaults changed); "
                            "refusing to reuse it: choose another --out or delete that folder")
    if reason == "code":
        raise BnnbenchError(f"{out_dir} was trained with other code of binarizer "
                            f"'{cell.config.binarizer['name']}' ({recorded['code']['source']} has "
                            "changed since); refusing to reuse it: choose another --out or "
                            "delete that folder")



def _train_locked(cell: ResolvedCell, record: CellRecord, progress: bool, on_epoch,
                  teachers: dict[str, Path]) -> dict:
    out_dir = record.path
    runstore.remove_partial_writes(out_dir)   # of a process killed while it wrote
    try:
        return _CellRun(cell, record, teachers).train(progress, on_epoch)
    except (KeyboardInterrupt, SystemExit):
        raise
    except OSError as exc:
        if exc.errno in ENVIRONMENT:   # the machine's fault, not the cell's: it stays resumable
            raise
        records.write_failure(out_dir, cell.config.to_dict(), cell.id, exc)
        raise
    except Exception as exc:
        records.write_failure(out_dir, cell.config.to_dict(), cell.id, exc)
        raise


def _epoch_generator(seed: int, stage_index: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage_index * 10_007 + epoch)


def train_step(model: torch.nn.Module, forward, optimizer, x: torch.Tensor,
               y: torch.Tensor, distiller: Distiller | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step of the engine, shared by train_cell and `bnnbench bench` so the
    benchmark times exactly this code: channels_last, bf16 autocast on CUDA, cross-entropy
    (or a `distiller`'s loss against its teacher) plus the binarizers' extra loss. `forward`
    is the model or its compiled version. Returns (loss detached, logits), both left on the
    device: no host synchronisation."""
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        logits = forward(x)
        loss = (F.cross_entropy(logits.float(), y) if distiller is None
                else distiller(x, logits.float(), y))
    extra = bnn.extra_loss(model)
    total = loss if extra is None else loss + extra
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return loss.detach(), logits


class _CellRun:
    """The state of one cell's training: data, model, stages and the records written so far."""

    def __init__(self, cell: ResolvedCell, record: CellRecord, teachers: dict[str, Path]):
        self.cell, self.out_dir, self.teacher_folders = cell, record.path, teachers
        self.teachers: dict[str, torch.nn.Module] = {}   # loaded teacher models, by id
        self.distiller: Distiller | None = None
        self.cfg, self.cell_id, self.stages = cell.config, cell.id, cell.stages
        cfg = cell.config
        self.device = resolve_device(cfg.device)
        self.cuda = self.device.type == "cuda"
        first_binarizer = {"name": cfg.binarizer["name"], **self.stages[0][1]["binarizer"]}
        normalize = self.stages[0][1]["normalize"]
        self.data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, device=self.device,
                                 normalize=normalize, subset=cfg.subset)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.arch, first_binarizer, family=self.data.family,
                                 in_channels=self.data.in_channels,
                                 num_classes=self.data.num_classes,
                                 input_size=self.data.image_size).to(
                                     self.device, memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if cfg.compile else self.model
        self.params = sum(p.numel() for p in self.model.parameters())
        self.metrics: list[dict] = []
        self.position = (0, 0)            # (stage index, next epoch within it)
        self.stage_start: dict[str, Any] | None = None  # weights a later stage starts from
        self.stage_start_top1: float | None = None      # their test top-1
        self.trained_binarizer: dict[str, Any] = {}     # the live values of the stage
        self.optimizer_state = None
        self.config = self._write_config_or_resume(record)   # config.json, as on disk

    # --- records -----------------------------------------------------------------------------
    def _write_config_or_resume(self, record: CellRecord) -> dict:
        if "stages" in record.config:
            self._load_checkpoint(record)
            return copy.deepcopy(record.config)
        config = records.config_record(
            self.cell, model=records.model_record(self.model, self.data, self.params),
            env=records.environment(self.device))
        records.write_config(self.out_dir, config)
        return config

    def _load_checkpoint(self, record: CellRecord) -> None:
        """Resume from the folder's checkpoint (the previous one if the latest is damaged),
        only if this cell wrote it."""
        ckpt, note = record.checkpoint()
        if ckpt is None:
            return
        if note:
            print(f"bnnbench: {note}", file=sys.stderr)
        if (ckpt.get("cell_id") != self.cell_id
                or comparable(ckpt.get("cell", {})) != comparable(self.cfg.to_dict())):
            raise BnnbenchError(f"{self.out_dir / runstore.CHECKPOINT} belongs to cell "
                                f"{ckpt.get('cell_id')}, not to this folder's {self.cell_id} "
                                "(copied or moved here?); delete it to train this cell from "
                                "its start")
        self.model.load_state_dict(ckpt["model"], strict=True)
        self.metrics = ckpt["metrics"]
        self.position = tuple(ckpt["position"])
        self.stage_start = ckpt["stage_start"]
        self.stage_start_top1 = ckpt.get("stage_start_top1")
        self.optimizer_state = ckpt["optimizer"]

    def _record_stage(self, index: int) -> None:
        """config.json's binarizer parameters of stage `index`, read back from the live layers
        that train it (what trains is what is recorded)."""
        self.trained_binarizer = binarizer_state.live_config(self.model, self.stages[index][0])
        self.config["stages"][index]["recipe"]["binarizer"] = self.trained_binarizer
        records.write_config(self.out_dir, self.config)

    def _save_checkpoint(self, optimizer) -> None:
        records.write_checkpoint(self.out_dir, records.checkpoint_state(
            self.cell, binarizer={"name": self.cfg.binarizer["name"], **self.trained_binarizer},
            model=self.model.state_dict(), optimizer=optimizer.state_dict(),
            position=self.position, metrics=self.metrics, stage_start=self.stage_start,
            stage_start_top1=self.stage_start_top1))
        records.write_metrics(self.out_dir, self.metrics)

    # --- training ----------------------------------------------------------------------------
    def train(self, progress: bool, on_epoch=None) -> dict:
        """Train the stages from the current position to the end; result.json's dict."""
        total = self.cell.planned_epochs
        with tqdm(total=total, initial=len(self.metrics), disable=not progress, unit="epoch",
                  desc=self.cell_id, leave=False) as bar:   # closed (erased) on any exit
            self._train_stages(bar, lambda row: on_epoch and on_epoch(row, total))
        return self._finish()

    def _train_stages(self, bar, on_epoch) -> None:
        start_stage, start_epoch = self.position
        for index in range(start_stage, len(self.stages)):
            stage, recipe = self.stages[index]
            first = start_epoch if index == start_stage else 0
            if first == 0:
                self._enter_stage(index)
            optimizer = make_optimizer(self.model, recipe)
            if first > 0:   # resuming inside this stage
                optimizer.load_state_dict(self.optimizer_state)
            self.distiller = stage_distiller(recipe, self.teacher_folders, self.device,
                                                     self.teachers)
            bnn.set_binarizer_params(self.model, recipe["binarizer"])
            bnn.set_stage(self.model, stage)
            self._record_stage(index)
            binarizer_state.metrics(self.model)   # a bad metric name fails now, not in an hour
            for epoch in range(first, recipe["epochs"]):
                row = self._epoch(index, epoch, optimizer)
                self.metrics.append(row)
                self.position = (index, epoch + 1)
                self._save_checkpoint(optimizer)
                bar.update()
                bar.set_postfix(stage=stage, top1=f"{row['top1']:.2f}")
                on_epoch(row)

    def _enter_stage(self, index: int) -> None:
        """Stage k > 0 starts from every tensor of the stage k−1 model its recipe's `init_from`
        names (strict load)."""
        if index > 0:
            self.model.load_state_dict(self.stage_start, strict=True)
        self.stage_start, self.stage_start_top1 = None, None

    def _keep_next_stage_start(self, index: int, epoch: int, top1: float) -> None:
        """Keep the weights stage index+1 will start from: stage index's final ones, or with
        `init_from = "best"` those of its epoch of best test top-1 (the first of equals)."""
        if index + 1 == len(self.stages):
            return
        if self.stages[index + 1][1]["init_from"] == "best":
            keep = self.stage_start_top1 is None or top1 > self.stage_start_top1
        else:
            keep = epoch + 1 == self.stages[index][1]["epochs"]
        if keep:
            self.stage_start = copy.deepcopy(self.model.state_dict())
            self.stage_start_top1 = top1

    def _epoch(self, stage_index: int, epoch: int, optimizer) -> dict:
        stage, recipe = self.stages[stage_index]
        lr = recipes.lr_at(recipe, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        position, length = recipes.schedule_position(recipe, epoch)
        bnn.set_progress(self.model, position / length)
        planned = math.ceil(self.data.num_train / recipe["batch_size"])   # steps this epoch
        per_step = binarizer_state.progress_per_step(self.model)
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        hits = torch.zeros((), device=self.device, dtype=torch.long)
        seen = steps = 0
        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        gen = _epoch_generator(self.cfg.seed, stage_index, epoch)
        for step, (x, y) in enumerate(self.data.train_batches(recipe["batch_size"], gen)):
            if per_step:
                bnn.set_progress(self.model, (position + step / planned) / length)
            loss, logits = train_step(self.model, self.forward, optimizer, x, y,
                                      self.distiller)
            loss_sum += loss * y.numel()
            hits += (logits.argmax(1) == y).sum()
            seen += y.numel()
            steps += 1
        train_loss = loss_sum.item() / seen
        train_seconds = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"the training loss became {train_loss} in stage '{stage}' "
                                   f"epoch {epoch} (lr {lr:g}); the cell stopped, its record "
                                   "is kept: lower the lr or check the binarizer")
        test = evaluate(self.model, self.data, eval_batch_size(recipe, self.device),
                        self.forward)
        self._keep_next_stage_start(stage_index, epoch, test["top1"])
        row = {"stage": stage, "epoch": epoch, "global_epoch": len(self.metrics), "lr": lr,
               "train_loss": train_loss, "train_top1": 100.0 * hits.item() / seen,
               **test, "seconds": time.perf_counter() - t0,
               "images_per_s": seen / train_seconds, "steps": steps}
        return binarizer_state.with_metrics(row, self.model)

    def _finish(self) -> dict:
        result = records.result_record(self.metrics, self.params, self.device)
        records.write_metrics(self.out_dir, self.metrics)  # (a repair)
        runstore.drop_previous_checkpoint(self.out_dir)
        (self.out_dir / runstore.ERROR_LOG).unlink(missing_ok=True)   # of an earlier failure
        # result.json last: it is what makes the cell finished, so a kill before it leaves a
        # cell that a rerun finishes from its final checkpoint, and none after it leaves debris
        records.write_result(self.out_dir, result)
        return result
