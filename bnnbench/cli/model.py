"""The commands on one trained run folder: `bnnbench eval` and `bnnbench export`."""
from __future__ import annotations

from pathlib import Path

import click

run_argument = click.argument("run", type=click.Path(file_okay=False, exists=True,
                                                     path_type=Path))


@click.command("eval")
@run_argument
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Where the dataset lives now (default: where it was trained from).")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | cuda:N")
def eval_cmd(run, data_dir, device):
    """Evaluate a trained run folder (one cell) on its test set: top-1 and top-5."""
    from ..engine.evaluate import evaluate_run
    from ..store.reader import CellRecord

    scores = evaluate_run(run, data_dir=data_dir, device=device)
    record = CellRecord(run)
    recorded = record.result.get("top1") if record.progress == "finished" else None
    click.echo(f"top-1 {scores['top1']:.2f}%, top-5 {scores['top5']:.2f}%, test loss "
               f"{scores['test_loss']:.4f}" + (f" (recorded final top-1 {recorded:.2f}%)"
                                               if recorded is not None else ""))


@click.command("export")
@run_argument
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write (default: RUN/export.safetensors).")
def export_cmd(run, out):
    """Write a trained run's deployable form: binary weights packed 1 bit each, scales, biases,
    BatchNorm and full-precision layers real (format: `python -m pydoc bnnbench.engine.export`);
    `bnnbench.load_export(FILE)` rebuilds the model with identical logits."""
    from ..engine.export import export_run

    sizes = export_run(run, out)
    header = sizes["file"] - sizes["binary"] - sizes["real"]
    click.echo(f"wrote {sizes['path']}: {_kib(sizes['file'])} = binary weights "
               f"{_kib(sizes['binary'])} (1 bit each) + real parts {_kib(sizes['real'])} + "
               f"header {_kib(header)}; the same model at fp32 {_kib(sizes['fp32'])}, the fp32 "
               f"checkpoint {_kib(sizes['checkpoint'])} (with optimizer state); reloaded: "
               "identical logits")


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"
