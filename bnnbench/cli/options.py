"""What several `bnnbench` commands share: the --log and --plugin options, the shortened-stage
note of their help, and the KEY=VALUE parsing of --param / --recipe / --stage-recipe."""
from __future__ import annotations

import json

import click

from ..errors import BnnbenchError
from ..schedule import tracking

SHORTENED = ("A shortened stage keeps its warm-up only while it fits in the first half of its "
             "schedule (BiPer's 5 epochs in a 10-epoch stage, 2 in a 4-epoch one).")
log_option = click.option(
    "--log", multiple=True, type=click.Choice(tracking.LOGGERS),
    help="Also log each cell's epochs through Ray Tune's logger callbacks (repeatable; mlflow "
         "and wandb need bnnbench[mlflow] / bnnbench[wandb]).")
plugin_option = click.option(
    "--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False),
    help="A Python file that registers binarizers, architectures, datasets or distillation "
         "losses (@register, @register_arch, @register_dataset, @register_distill_loss; "
         "repeatable).")


def key_values(pairs, what: str) -> dict:
    """KEY=VALUE options: VALUE is read as JSON (numbers, true/false, lists), else as a float
    (inf, nan: the checks then name them), else a string."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BnnbenchError(f"{what} '{pair}' must look like KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def stage_key_values(items) -> dict:
    """STAGE:KEY=VALUE options as {stage: {key: value}} (VALUE read as in `key_values`)."""
    out: dict[str, dict] = {}
    for item in items:
        stage, sep, pair = item.partition(":")
        if not sep or not stage:
            raise BnnbenchError(f"--stage-recipe '{item}' must look like STAGE:KEY=VALUE, "
                                "e.g. binary:epochs=2")
        out.setdefault(stage, {}).update(key_values([pair], f"--stage-recipe '{item}':"))
    return out
