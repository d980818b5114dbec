"""Discoverability: `bnnbench --version`, `bnnbench list --archs | --datasets | --grids`
(one line each, with a description) and the notebook names at the top level."""
import inspect
from importlib.metadata import version

import pytest
import torch
from click.testing import CliRunner

import bnnbench
from bnnbench import data, models
from bnnbench.cli.main import cli
from bnnbench.experiment import grid


def test_version_is_the_installed_distributions():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"bnnbench, version {version('bnnbench')}"
    assert bnnbench.__version__ == version("bnnbench")


def rows(args):
    result = CliRunner().invoke(cli, ["list", *args])
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    return header.split(), [line.split(maxsplit=len(header.split()) - 1) for line in lines]


def test_list_archs_is_one_line_per_arch_with_its_parameters():
    header, lines = rows(["--archs"])
    expected = {(f, a) for f in models.list_families() for a in models.list_archs(f)}
    assert {(r[0], r[1]) for r in lines} == expected and len(lines) == len(expected)
    for family, arch, variant, params, binary, description in lines:
        with torch.device("meta"):
            model = models.build_model(arch, "xnor", family=family)
        assert int(params.replace(",", "")) == sum(p.numel() for p in model.parameters())
        assert variant == model.variant and description
        assert 0 < int(binary.replace(",", "")) < int(params.replace(",", ""))


def test_list_datasets_and_grids_name_each_with_a_description():
    _, lines = rows(["--datasets"])
    assert [r[0] for r in lines] == data.list_datasets()
    for name, image, classes, family, description in lines:
        shape = data.dataset_shape(name)
        assert image == f"{shape.in_channels}×{shape.image_size}×{shape.image_size}"
        assert (int(classes), family) == (shape.num_classes, shape.family) and description
    _, lines = rows(["--grids"])
    assert [r[0] for r in lines] == grid.list_grids()
    for name, cells, description in lines:
        loaded = grid.load_grid(name)
        assert int(cells) == len(loaded.cells) and description == loaded.description


def test_list_refuses_names_with_a_catalog_flag():
    result = CliRunner().invoke(cli, ["list", "xnor", "--archs"])
    assert result.exit_code != 0 and "without binarizer names" in str(result.exception)


@pytest.mark.parametrize("name", ["build_model", "train_cell", "run_grid", "load_run",
                                  "leaderboard", "load_export"])
def test_a_notebook_imports_each_name_from_bnnbench_and_it_is_documented(name):
    namespace = {}
    exec(f"from bnnbench import {name}", namespace)
    assert callable(namespace[name]) and len(inspect.getdoc(namespace[name]) or "") > 40
    assert name in bnnbench.__all__
