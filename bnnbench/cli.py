"""The `bnnbench` command: list | train | run | report | summary | bench (eval and export, on
one trained run, are in cli_model).

User errors (BnnbenchError) print as one line and exit 2; `--debug` shows the traceback.
"""
from __future__ import annotations

import inspect
import json
import signal
import sys
import threading
from pathlib import Path

import click

from . import __version__, cli_model, registry
from .errors import ENVIRONMENT, BnnbenchError, describe_os_error

SHORTENED = ("A shortened stage keeps its warm-up only while it fits in the first half of its "
             "schedule (BiPer's 5 epochs in a 10-epoch stage, 2 in a 4-epoch one).")
log_option = click.option(
    "--log", multiple=True, type=click.Choice(["tensorboard", "mlflow", "wandb"]),
    help="Also log each cell's epochs through Ray Tune's logger callbacks (repeatable; mlflow "
         "and wandb need bnnbench[mlflow] / bnnbench[wandb]).")
plugin_option = click.option(
    "--plugin", "plugins", multiple=True, type=click.Path(dir_okay=False),
    help="A Python file that registers binarizers with @register (repeatable).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bnnbench")
@click.option("--debug", is_flag=True, help="Show tracebacks for user errors.")
@click.pass_context
def cli(ctx, debug):
    """bnnbench: benchmark binarizers of Binary Neural Networks."""
    ctx.obj = {"debug": debug}


@cli.command("list")
@click.argument("names", nargs=-1)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="With NAMES: a binarizer parameter to resolve, e.g. omega0=30 (repeatable).")
@click.option("--recipe", "dataset", metavar="DATASET",
              help="With NAMES: print the recipe each stage trains with on DATASET, resolved "
                   "as a cell would be (binarizer values included).")
@click.option("--arch", help="With --recipe: the architecture (default: resnet20 on CIFAR-style "
                             "data, resnet18 on ImageNet).")
@click.option("--archs", "what", flag_value="archs",
              help="Print the architectures instead, one line each.")
@click.option("--datasets", "what", flag_value="datasets",
              help="Print the datasets instead, one line each.")
@click.option("--grids", "what", flag_value="grids",
              help="Print the shipped grids instead, one line each.")
@plugin_option
def list_cmd(names, params, dataset, arch, what, plugins):
    """Print the registered binarizers; with NAMES, each one's resolved parameters and spec;
    with --archs, --datasets or --grids, those instead."""
    from . import catalog

    if what and (names or dataset):
        raise BnnbenchError(f"--{what} lists every one of them: give it without binarizer "
                            "names or --recipe")
    if what:
        for line in catalog.format_table(getattr(catalog, what)()):
            click.echo(line)
        return
    registry.load_plugins(plugins)
    for name in names:
        if dataset:
            _echo_recipe(name, _key_values(params, "--param"), dataset, arch)
            continue
        cls, config = registry.resolve({"name": name, **_key_values(params, "--param")})
        click.echo(f"{cls.name}: {cls.paper} {cls.year or ''} (spec: {cls.spec or '-'}; "
                   f"origin: {cls.origin})")
        click.echo(f"  stages: {' → '.join(cls.stages)}; nonlinearity: {cls.nonlinearity}; "
                   f"layout: {cls.layout}")
        click.echo("  parameters: " + (", ".join(f"{k}={v!r}" for k, v in config.items())
                                       or "none"))
        click.echo("  " + inspect.cleandoc(cls.__doc__ or "").replace("\n", "\n  ") + "\n")
    if names:
        return
    rows = [(name, cls.paper, str(cls.year or ""), "→".join(cls.stages), cls.origin)
            for name in registry.list_binarizers() for cls in [registry.get(name)]]
    for line in catalog.format_table((("name", "paper", "year", "stages", "origin"), rows)):
        click.echo(line)


def _echo_recipe(name: str, params: dict, dataset: str, arch: str | None) -> None:
    """What a cell of `name` trains with on dataset/arch, stage by stage."""
    from .cell import CellConfig, check_dataset_arch
    from .data import SHAPES
    from .recipe import stage_recipes

    if dataset in SHAPES and arch is None:
        arch = {"cifar": "resnet20", "imagenet": "resnet18"}[SHAPES[dataset].family]
    check_dataset_arch(dataset, arch)
    cell = CellConfig(dataset=dataset, arch=arch, binarizer={"name": name, **params})
    click.echo(f"{name} on {dataset}/{arch} (cell id {cell.cell_id()}):")
    for stage, recipe in stage_recipes(cell):
        binarizer = recipe.pop("binarizer")
        click.echo(f"  stage {stage}: " + ", ".join(f"{k}={v}" for k, v in recipe.items()))
        click.echo("    binarizer: " + (", ".join(f"{k}={v!r}" for k, v in binarizer.items())
                                        or "no parameters"))


def _key_values(pairs, what: str) -> dict:
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


def _stage_key_values(items) -> dict:
    """STAGE:KEY=VALUE options as {stage: {key: value}} (VALUE read as in `_key_values`)."""
    out: dict[str, dict] = {}
    for item in items:
        stage, sep, pair = item.partition(":")
        if not sep or not stage:
            raise BnnbenchError(f"--stage-recipe '{item}' must look like STAGE:KEY=VALUE, "
                                "e.g. binary:epochs=2")
        out.setdefault(stage, {}).update(_key_values([pair], f"--stage-recipe '{item}':"))
    return out


@cli.command("train")
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
    from . import teachers
    from .cell import CellConfig
    from .train import train_cell

    registry.load_plugins(plugins)
    recipe = _key_values(recipe, "--recipe")
    if teacher:
        recipe = {"distill": "distribution", **recipe,
                  "teacher": teachers.spec_from_folder(teacher, dataset)}
    cfg = CellConfig(dataset=dataset, arch=arch,
                     binarizer={"name": binarizer, **_key_values(params, "--param")},
                     seed=seed, recipe=recipe,
                     stage_recipes=_stage_key_values(stage_recipe), epochs=epochs,
                     total_epochs=total_epochs, budget=budget, subset=subset,
                     data_dir=data_dir, device=device,
                     compile=compile_, plugins=[str(Path(p).resolve()) for p in plugins])
    out = out or Path("results/runs/train") / cfg.cell_id()
    given = {tid: teacher for tid in teachers.teacher_ids(cfg.check())} if teacher else {}
    teachers.train_missing(cfg, out, given, lambda t, folder: train_cell(t, folder,
                                                                         threads=threads),
                           click.echo)
    if log:   # through Ray Tune, whose logger callbacks see each epoch
        from .trial import train_logged
        if teacher:
            raise BnnbenchError("--teacher with --log: the trial finds a teacher beside --out "
                                "only; leave out --teacher (it then trains there) or --log")
        result = train_logged(cfg, out.resolve(), tuple(log), threads=threads)
    else:
        result = train_cell(cfg, out, threads=threads, teachers=given)
    click.echo(f"{result['status']}: top-1 {result['top1']:.2f}% (best {result['best_top1']:.2f}%), "
               f"top-5 {result['top5']:.2f}%, {result['epochs']} epochs in "
               f"{result['seconds']:.0f} s -> {out}")


@cli.command("run")
@click.option("--grid", "grid_name", required=True, metavar="NAME|FILE",
              help="A shipped grid (smoke, cifar10, imagenet, biper_omega) or a .toml file.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run store (default: results/runs/<grid name>). With --address: a path on "
                   "storage shared by every node.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the datasets live.")
@click.option("--address", help="Join this Ray cluster: HOST:PORT of `ray start --head`, auto "
                                "(one on this machine) or ray://HOST:10001 (needs "
                                "bnnbench[client]). Default: RAY_ADDRESS, else a local Ray.")
@click.option("--cpus-per-trial", type=float, help="CPUs per cell (default: shares the machine).")
@click.option("--gpus-per-trial", type=float,
              help="GPUs per cell, fractions allowed (default: 1 if the cluster has GPUs, else 0).")
@click.option("--max-concurrent", type=int, help="At most this many cells at a time (>= 1).")
@click.option("--retry-failed", is_flag=True, help="Run failed cells again (default: keep them).")
@click.option("--max-failures", type=int, default=3, show_default=True,
              help="Restarts of a cell whose trial process dies (node lost, OOM kill); it "
                   "resumes from its checkpoint. A cell failing by itself is not retried.")
@click.option("--progress-every", type=float, default=60.0, show_default=True,
              help="Seconds between progress lines when the output is not a terminal.")
@log_option
@click.option("--rerun-stale", is_flag=True,
              help="Train again the cells whose binarizer code changed since they trained (the "
                   "old folder is kept as <id>.stale-<time>). Default: keep them, left out of "
                   "reports, and exit 1.")
@click.option("--dry-run", is_flag=True, help="List the cells and their status; train nothing.")
@click.option("--epochs", type=int,
              help=f"Every stage's epochs of every cell (a grid's [stage.*] epochs win). "
                   f"{SHORTENED}")
@click.option("--total-epochs", type=int,
              help="Epochs of all stages of every cell together, split over a two-stage "
                   "method's stages in its recipe's ratio (replaces the grid's epochs).")
@click.option("--budget", type=float,
              help=f"Fraction of each stage's epochs (0 < b <= 1). {SHORTENED}")
@click.option("--subset", type=int, help="Train on the first N images only.")
@plugin_option
def run_cmd(grid_name, out, data_dir, address, cpus_per_trial, gpus_per_trial, max_concurrent,
            retry_failed, max_failures, progress_every, log, rerun_stale, dry_run, epochs,
            total_epochs, budget, subset, plugins):
    """Run a grid of cells with Ray Tune; rerunning the same command skips finished cells and
    resumes interrupted ones. Exits 1 unless every cell of the grid is finished and current
    (a cell failed, cannot be read, is stale, or did not run); Ctrl-C exits 130, SIGTERM 143."""
    import time

    from . import grid as grids, tune as tuning

    t0 = time.time()
    grid = grids.load_grid(grid_name, plugins=plugins, epochs=epochs,
                           total_epochs=total_epochs, budget=budget,
                           subset=subset, data_dir=str(Path(data_dir).resolve()) if data_dir
                           else None)
    store = (out or tuning.default_store(grid)).expanduser().resolve()
    if dry_run:
        table = tuning.cell_table(grid, store)
        click.echo(f"grid {grid.name} ({grid.path}): {len(grid.cells)} cells -> {store}"
                   + (f"; {grid.duplicates} duplicate entries dropped" if grid.duplicates else ""))
        if grid.description:
            click.echo(grid.description)
        click.echo(tuning.format_table(table.drop(columns=["top1", "best_top1", "minutes"])))
        counts = table["status"].value_counts()
        click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
        stale = tuning.stale_line(store)
        for line in ([stale] if stale else []) + tuning.damage_lines(
                store, table.loc[table["status"] == "damaged", "cell"]):
            click.echo(line)
        return
    table = tuning.run_grid(grid, store, address=address, cpus_per_trial=cpus_per_trial,
                            gpus_per_trial=gpus_per_trial, max_concurrent=max_concurrent,
                            max_failures=max_failures, progress_every=progress_every,
                            log=tuple(log), retry_failed=retry_failed,
                            rerun_stale=rerun_stale, echo=click.echo)
    click.echo("\n" + tuning.format_table(table))
    click.echo("\n" + tuning.leaderboard_text(grid, store))
    counts = table["status"].value_counts()
    click.echo(f"{', '.join(f'{n} {s}' for s, n in counts.items())} in "
               f"{time.time() - t0:.0f} s; run store: {store}")
    if (table["status"] != "finished").any():
        sys.exit(1)


@cli.command("report")
@click.argument("runs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Where leaderboard.csv/.md/.tex/.html, ranking.csv and figures/ go "
                   "(default: results/leaderboard).")
@click.option("--format", "fmt", type=click.Choice(["csv", "markdown", "json", "latex"]),
              help="Print the leaderboard to stdout in this format instead of the summary "
                   "(for scripts); the files are written either way.")
@click.option("--grid", "grid_name", metavar="NAME|FILE",
              help="Show this grid's cells that have no run folder yet as missing (n_seeds 0); "
                   "default RUNS: the grid's run store.")
@click.option("--no-figures", is_flag=True, help="Write the tables only.")
@click.option("--no-counts", is_flag=True, help="Skip the op/size counts (no model builds).")
@plugin_option
def report_cmd(runs, out, fmt, grid_name, no_figures, no_counts, plugins):
    """Summarise run stores (default: results/runs) into a leaderboard beside the published
    numbers (Markdown, LaTeX, a self-contained HTML page, CSV), plus figures (PNG + SVG).
    Column meanings: `python -m pydoc bnnbench.report`.
    Plugin files recorded in the runs' config.json are loaded from there: --plugin is needed
    only for a plugin file that has moved since."""
    from . import report

    registry.load_plugins(plugins)
    expected = []
    if grid_name:
        from . import grid as grids, tune as tuning
        grid = grids.load_grid(grid_name, plugins=plugins)
        expected = grid.cells
        runs = runs or (tuning.default_store(grid),)
    runs = runs or (Path("results") / "runs",)
    out = out or Path("results") / "leaderboard"
    result = report.write_report(runs, out, expected=expected, figures=not no_figures,
                                 counts=not no_counts)
    board = result["leaderboard"]
    if fmt == "csv":
        click.echo(board.to_csv(index=False), nl=False)
    elif fmt == "markdown":
        click.echo(result["markdown"])
    elif fmt == "json":
        click.echo(json.dumps(report.records(board), indent=1))
    elif fmt == "latex":
        click.echo((out / "leaderboard.tex").read_text(), nl=False)
    else:
        click.echo(result["markdown"])
        click.echo(f"{len(result['cells'])} cells, {len(board)} leaderboard rows; wrote "
                   f"{len(result['files'])} files to {out}")


@cli.command("summary")
@click.option("--arch", required=True, help="e.g. resnet20, resnet18, vgg_small")
@click.option("--binarizer", default="biper", show_default=True)
@click.option("--dataset", default="cifar10", show_default=True,
              help="Whose image shape and classes the model is built for.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A binarizer parameter (repeatable).")
@plugin_option
def summary_cmd(arch, binarizer, dataset, params, plugins):
    """Per-layer table of a model: precision, output shape, binary and real parameters, BOPs
    and FLOPs per image, and the totals the report uses."""
    import pandas as pd
    import torch

    from .cell import check_dataset_arch
    from .data import SHAPES
    from .models import build_model, complexity, layer_table

    registry.load_plugins(plugins)
    check_dataset_arch(dataset, arch)
    shape = SHAPES[dataset]
    with torch.device("meta"):   # shapes and counts only: no memory, no compute
        model = build_model(arch, {"name": binarizer, **_key_values(params, "--param")},
                            family=shape.family, in_channels=shape.in_channels,
                            num_classes=shape.num_classes, input_size=shape.image_size)
    table = pd.DataFrame(layer_table(model))
    click.echo(f"{arch} ({model.variant}) with {binarizer} on {dataset} "
               f"({shape.in_channels}×{shape.image_size}×{shape.image_size}, "
               f"{shape.num_classes} classes)")
    click.echo(table.to_string(index=False))
    total = complexity(model)
    click.echo(f"total: {total['params']:,} parameters ({total['binary_params']:,} binary, the "
               f"rest incl. BatchNorm at 32 bits), {total['size_bits'] / 8 / 2**20:.2f} MiB; "
               f"{total['bops']:,} BOPs + {total['flops']:,} FLOPs = {total['ops']:,.0f} OPs "
               "per image (OPs = BOPs/64 + FLOPs)")


@cli.command("bench")
@click.option("--arch", "archs", multiple=True,
              help="Architecture (repeatable; default: resnet20, resnet18, vgg_small).")
@click.option("--binarizer", "binarizers", multiple=True,
              help="Binarizer (repeatable; default: every registered binary one; the fp32 "
                   "kind is the `fp` entry).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["engine", "fp32", "official"]),
              help="Which loops to time (repeatable; default: all three).")
@click.option("--device", default=None, help="cuda | cpu (default: cuda when available).")
@click.option("--batch-size", type=int, help="Default: each binarizer's CIFAR-10 recipe.")
@click.option("--warmup", default=2, show_default=True, help="Untimed steps first.")
@click.option("--steps", default=5, show_default=True, help="Steps per timed block.")
@click.option("--repeats", default=3, show_default=True, help="Timed blocks; the median is kept.")
@click.option("--rounds", default=1, show_default=True,
              help="Measure every kind again in fresh processes, alternating the order; the "
                   "median round is kept (steadier ratios on a noisy machine).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the engine's model.")
@click.option("--profile", is_flag=True,
              help="Also profile two steps of each loop (torch.profiler) and list its top "
                   "operators in the JSON and Markdown.")
@click.option("--workers", default=2, show_default=True,
              help="DataLoader workers of the official-style loop.")
@click.option("--threads", type=int, help="torch.set_num_threads (default: torch's).")
@click.option("--data-dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("benchmarks/results"), show_default=True)
@plugin_option
def bench_cmd(archs, binarizers, kinds, device, batch_size, warmup, steps, repeats, rounds,
              compile_, profile, workers, threads, data_dir, out, plugins):
    """Training throughput and peak memory: engine vs full precision vs official-style loop."""
    import torch

    from . import bench

    registry.load_plugins(plugins)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    result = bench.run_benchmark(archs or bench.DEFAULT_ARCHS,
                                 binarizers or [n for n in registry.list_binarizers()
                                                if registry.get(n).binary], device=device,
                                 batch_size=batch_size, warmup=warmup, steps=steps,
                                 repeats=repeats, rounds=rounds, compile=compile_,
                                 workers=workers,
                                 threads=threads, kinds=kinds or bench.KINDS, data_dir=data_dir,
                                 plugins=[str(Path(p).resolve()) for p in plugins],
                                 profile=profile, log=click.echo)
    jpath, mpath = bench.write(result, out)
    click.echo(bench.markdown(result))
    click.echo(f"wrote {jpath} and {mpath}")


for command in (cli_model.eval_cmd, cli_model.export_cmd):
    cli.add_command(command)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what cluster schedulers send), raised like Ctrl-C so that everything unwinds
    the same way (Ray shut down, locks released), then exit 143."""


TERMINATED: list[int] = []   # SIGTERM seen (libraries may re-raise it as a plain Ctrl-C)


def _terminate(signum, frame):
    TERMINATED.append(signum)
    raise Terminated()


def main(argv=None):
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        cli.main(args=argv, prog_name="bnnbench", standalone_mode=False)
    except click.exceptions.Abort as exc:
        term = bool(TERMINATED)
        click.echo(f"{'terminated (SIGTERM)' if term else 'interrupted'}: rerun the same command "
                   "to resume (finished epochs and cells are kept)", err=True)
        sys.exit(143 if term else 130)
    except click.UsageError as exc:   # one line too, with where to read the options
        where = exc.ctx.command_path if exc.ctx else "bnnbench"
        click.echo(f"bnnbench: error: {exc.format_message()} (see `{where} --help`)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BnnbenchError as exc:
        if debug:
            raise
        click.echo(f"bnnbench: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:   # the machine's fault (full disk, read-only folder): one line too
        if debug or exc.errno not in ENVIRONMENT:
            raise
        click.echo(f"bnnbench: error: {describe_os_error(exc)}", err=True)
        sys.exit(2)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
