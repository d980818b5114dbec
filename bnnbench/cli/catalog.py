"""What bnnbench knows, without training: `bnnbench list` (binarizers, their resolved
parameters and recipes; archs, datasets, grids) and `bnnbench summary` (one model, layer by
layer)."""
from __future__ import annotations

import inspect

import click

from ..api import registry
from ..errors import BnnbenchError
from .options import key_values, plugin_option


@click.command("list")
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
    from . import listing as catalog

    if what and (names or dataset):
        raise BnnbenchError(f"--{what} lists every one of them: give it without binarizer "
                            "names or --recipe")
    registry.load_plugins(plugins)   # before --archs and --datasets too: a plugin may add some
    if what:
        for line in catalog.format_table(getattr(catalog, what)()):
            click.echo(line)
        return
    for name in names:
        if dataset:
            _echo_recipe(name, key_values(params, "--param"), dataset, arch)
            continue
        cls, config = registry.resolve({"name": name, **key_values(params, "--param")})
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
    from ..data import dataset_shape, list_datasets
    from ..experiment.cell import CellConfig
    from ..experiment.resolve import resolve

    if dataset in list_datasets() and arch is None:
        arch = {"cifar": "resnet20", "imagenet": "resnet18"}[dataset_shape(dataset).family]
    cell = resolve(CellConfig(dataset=dataset, arch=arch, binarizer={"name": name, **params}))
    click.echo(f"{name} on {dataset}/{arch} (cell id {cell.id}):")
    for stage, recipe in cell.stages:
        recipe = dict(recipe)
        binarizer = recipe.pop("binarizer")
        click.echo(f"  stage {stage}: " + ", ".join(f"{k}={v}" for k, v in recipe.items()))
        click.echo("    binarizer: " + (", ".join(f"{k}={v!r}" for k, v in binarizer.items())
                                        or "no parameters"))


@click.command("summary")
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

    from ..data import dataset_shape
    from ..experiment.cell import check_dataset_arch
    from ..models import build_model, complexity, layer_table

    registry.load_plugins(plugins)
    check_dataset_arch(dataset, arch)
    shape = dataset_shape(dataset)
    with torch.device("meta"):   # shapes and counts only: no memory, no compute
        model = build_model(arch, {"name": binarizer, **key_values(params, "--param")},
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
