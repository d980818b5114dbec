"""The `bnnbench` command: list | train | run | report | bench.

User errors (BnnbenchError) print as one line and exit 2; `--debug` shows the traceback.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import registry
from .errors import BnnbenchError

plugin_option = click.option(
    "--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False),
    help="A Python file that registers binarizers with @register (repeatable).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
@click.pass_context
def cli(ctx, debug):
    """bnnbench: benchmark binarizers of Binary Neural Networks."""
    ctx.obj = {"debug": debug}


@cli.command("list")
@plugin_option
def list_cmd(plugins):
    """Print the registered binarizers."""
    registry.load_plugins(plugins)
    rows = [(name, cls.paper, str(cls.year or ""), "→".join(cls.stages), cls.origin)
            for name in registry.list_binarizers() for cls in [registry.get(name)]]
    header = ("name", "paper", "year", "stages", "origin")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _key_values(pairs, what: str) -> dict:
    """KEY=VALUE options: VALUE is read as JSON (numbers, true/false, lists), else a string."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BnnbenchError(f"{what} '{pair}' must look like KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@cli.command("train")
@click.option("--dataset", required=True, help="cifar10 | imagenet | digits")
@click.option("--arch", required=True, help="e.g. resnet20, resnet18, vgg_small")
@click.option("--binarizer", default="biper", show_default=True)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A binarizer parameter, e.g. omega0=20 (repeatable).")
@click.option("--recipe", "recipe", multiple=True, metavar="KEY=VALUE",
              help="A recipe override for every stage, e.g. lr=0.05 (repeatable).")
@click.option("--seed", default=0, show_default=True)
@click.option("--epochs", type=int, help="Override every stage's epochs.")
@click.option("--budget", type=float, default=1.0, show_default=True,
              help="Fraction of each stage's epochs, for short comparisons.")
@click.option("--subset", type=int, help="Train on the first N images only.")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--device", help="cuda | cpu (default: cuda when available).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: results/runs/train/<cell-id>).")
@plugin_option
def train_cmd(dataset, arch, binarizer, params, recipe, seed, epochs, budget, subset, data_dir,
              device, compile_, out, plugins):
    """Train one cell; rerunning the same command resumes it."""
    from .cell import CellConfig
    from .train import train_cell

    registry.load_plugins(plugins)
    cfg = CellConfig(dataset=dataset, arch=arch,
                     binarizer={"name": binarizer, **_key_values(params, "--param")},
                     seed=seed, recipe=_key_values(recipe, "--recipe"), epochs=epochs,
                     budget=budget, subset=subset, data_dir=data_dir, device=device,
                     compile=compile_, plugins=[str(Path(p).resolve()) for p in plugins])
    out = out or Path("results/runs/train") / cfg.cell_id()
    result = train_cell(cfg, out)
    click.echo(f"{result['status']}: top-1 {result['top1']:.2f}% (best {result['best_top1']:.2f}%), "
               f"top-5 {result['top5']:.2f}%, {result['epochs']} epochs in "
               f"{result['seconds']:.0f} s -> {out}")


def main(argv=None):
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="bnnbench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BnnbenchError as exc:
        if debug:
            raise
        click.echo(f"bnnbench: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
