"""The grid commands: `bnnbench run` (a grid of cells through Ray Tune) and `bnnbench report`
(run stores into a leaderboard and figures)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..api import registry
from .options import SHORTENED, log_option, plugin_option


@click.command("run")
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

    from ..experiment import grid as grids
    from ..schedule import driver as tuning
    from ..schedule import status
    from ..store.reader import RunStore

    t0 = time.time()
    grid = grids.load_grid(grid_name, plugins=plugins, epochs=epochs,
                           total_epochs=total_epochs, budget=budget,
                           subset=subset, data_dir=str(Path(data_dir).resolve()) if data_dir
                           else None)
    store = (out or tuning.default_store(grid)).expanduser().resolve()
    runs = RunStore(store)   # each folder read once by the whole command
    if dry_run:
        table = status.cell_table(grid, runs)
        click.echo(f"grid {grid.name} ({grid.path}): {len(grid.cells)} cells -> {store}"
                   + (f"; {grid.duplicates} duplicate entries dropped" if grid.duplicates else ""))
        if grid.description:
            click.echo(grid.description)
        click.echo(status.format_table(table.drop(columns=["top1", "best_top1", "minutes"])))
        counts = table["status"].value_counts()
        click.echo(", ".join(f"{n} {s}" for s, n in counts.items()))
        stale = status.stale_line(runs)
        for line in ([stale] if stale else []) + status.damage_lines(
                runs, table.loc[table["status"] == "damaged", "cell"]):
            click.echo(line)
        return
    table = tuning.run_grid(grid, runs, address=address, cpus_per_trial=cpus_per_trial,
                            gpus_per_trial=gpus_per_trial, max_concurrent=max_concurrent,
                            max_failures=max_failures, progress_every=progress_every,
                            log=tuple(log), retry_failed=retry_failed,
                            rerun_stale=rerun_stale, echo=click.echo)
    click.echo("\n" + status.format_table(table))
    click.echo("\n" + tuning.leaderboard_text(grid, runs))
    counts = table["status"].value_counts()
    click.echo(f"{', '.join(f'{n} {s}' for s, n in counts.items())} in "
               f"{time.time() - t0:.0f} s; run store: {store}")
    if (table["status"] != "finished").any():
        sys.exit(1)


@click.command("report")
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
    Column meanings: `python -m pydoc bnnbench.report.leaderboard`.
    Plugin files recorded in the runs' config.json are loaded from there: --plugin is needed
    only for a plugin file that has moved since."""
    from ..report import leaderboard as report

    registry.load_plugins(plugins)
    expected = []
    if grid_name:
        from ..experiment import grid as grids
        from ..schedule import driver as tuning
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
