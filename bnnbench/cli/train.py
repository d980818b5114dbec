"""`bnnbench train`: one cell, outside a grid (its teachers first when it distils)."""
from __future__ import annotations

from pathlib import Path

import click

from ..api import registry
from ..errors import BnnbenchError
from .options import SHORTENED, key_values, log_option, plugin_option, stage_key_values


@click.command("train")
@click.option("--dataset", required=True, help="cifar10 | imagenet | digits")
@click.option("--arch", required=True, help="e.g. resnet20, resnet18, vgg_small")
@click.option("--binarizer", default="biper", show_default=True)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A binarizer parameter, e.g. omega0=20 (repeatable).")
@click.option("--recipe", "recipe", multiple=True, metavar="KEY=VALUE",
              help="A recipe override for every stage, e.g. lr=0.05 (repeatable).")
@click.option("--stage-recipe", "stage_recipe", multiple=True, metavar="STAGE:KEY=VALUE",
              help="A recipe override for one stage, e.g. binary:epochs=2 (repeatable; as a "
                   "grid file's [stage.<name>]).")
@click.option("--seed", default=0, show_default=True)
@click.option("--epochs", type=int,
              help=f"Every stage's epochs (a --stage-recipe STAGE:epochs=N wins). {SHORTENED}")
@click.option("--total-epochs", type=int,
              help="Epochs of all stages together, split over the stages in the recipe's ratio.")
@click.option("--budget", type=float, default=1.0, show_default=True,
              help=f"Fraction of each stage's epochs, for short comparisons. {SHORTENED}")
@click.option("--subset", type=int, help="Train on the first N images only.")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--device", help="cuda | cpu (default: cuda when available).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option("--threads", type=int, help="CPU threads (default: torch's; fewer is faster on a "
                                          "busy machine).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: results/runs/train/<cell-id>).")
@click.option("--teacher", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Distil from the cell trained in this run folder (recipe distill defaults "
                   "to 'distribution'). Without it, a cell that distils (e.g. reactnet) trains "
                   "its teacher first, beside --out.")
@log_option
@plugin_option
def train_cmd(dataset, arch, binarizer, params, recipe, stage_recipe, seed, epochs,
              total_epochs, budget, subset, data_dir, device, compile_, threads, out, teacher,
              log,
              plugins):
    """Train one cell; rerunning the same command resumes it."""
    from ..engine.teachers import spec_from_folder, train_missing
    from ..engine.train import train_cell
    from ..experiment.cell import CellConfig
    from ..experiment.resolve import resolve
    from ..schedule import tracking

    registry.load_plugins(plugins)
    recipe = key_values(recipe, "--recipe")
    if teacher:
        recipe = {"distill": "distribution", **recipe,
                  "teacher": spec_from_folder(teacher, dataset)}
    cfg = CellConfig(dataset=dataset, arch=arch,
                     binarizer={"name": binarizer, **key_values(params, "--param")},
                     seed=seed, recipe=recipe,
                     stage_recipes=stage_key_values(stage_recipe), epochs=epochs,
                     total_epochs=total_epochs, budget=budget, subset=subset,
                     data_dir=data_dir, device=device,
                     compile=compile_, plugins=[str(Path(p).resolve()) for p in plugins])
    cell = resolve(cfg)
    out = out or Path("results/runs/train") / cell.id
    given = {tid: teacher for tid in cell.teacher_ids} if teacher else {}
    if log:   # checked before any teacher trains
        if teacher:
            raise BnnbenchError("--teacher with --log: the trial finds a teacher beside --out "
                                "only; leave out --teacher (it then trains there) or --log")
        tracking.check(log)
    train_missing(cell, out, given, lambda t, folder: train_cell(t, folder,
                                                                         threads=threads),
                           click.echo)
    if log:   # through Ray Tune, whose logger callbacks see each epoch
        from ..schedule.trial import train_logged
        result = train_logged(cell, out.resolve(), tuple(log), threads=threads)
    else:
        result = train_cell(cell, out, threads=threads, teachers=given)
    click.echo(f"{result['status']}: top-1 {result['top1']:.2f}% (best {result['best_top1']:.2f}%), "
               f"top-5 {result['top5']:.2f}%, {result['epochs']} epochs in "
               f"{result['seconds']:.0f} s -> {out}")
