"""`bnnbench bench`: training throughput and peak memory of the engine against baselines."""
from __future__ import annotations

from pathlib import Path

import click

from ..api import registry
from .options import plugin_option


@click.command("bench")
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

    from ..bench import benchmark as bench

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
