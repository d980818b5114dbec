"""Grid files: expansion into cells (counts, axes, stable ids) and one-line errors."""
from __future__ import annotations

import textwrap

import pytest

from bnnbench.errors import BnnbenchError
from bnnbench.experiment import grid

BUILTINS = ["sign_ste", "xnor", "bireal", "irnet", "reactnet", "recu", "biper"]


def write(tmp_path, text: str, name: str = "g.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_shipped_grids():
    assert grid.list_grids() == ["biper_omega", "cifar10", "cifar10_same_recipe", "imagenet",
                                 "smoke"]
    smoke = grid.load_grid("smoke")
    # ReActNet distils from an fp teacher of its arch: the grid adds that cell, first
    assert smoke.name == "smoke" and len(smoke.cells) == 8
    assert [c.config.binarizer["name"] for c in smoke.cells] == ["fp"] + BUILTINS
    assert {(c.config.dataset, c.config.arch, c.config.seed) for c in smoke.cells} == {
        ("digits", "resnet20", 0)}
    cifar = grid.load_grid("cifar10")
    assert len(cifar.cells) == 24 and cifar.cells[0].config.binarizer["name"] == "fp"
    assert all(c.config.recipe == {} and c.config.stage_recipes == {}
               and c.config.epochs is None for c in cifar.cells)
    assert {c.config.arch for c in cifar.cells} == {"resnet18", "resnet20", "vgg_small"}
    assert len(grid.load_grid("imagenet").cells) == 16
    # the official grids list fp: ReActNet's teachers are their own fp cells (ImageNet: the fp
    # ResNet-34 of the official recipe), nothing added
    for name, arch in (("cifar10", "resnet20"), ("imagenet", "resnet18")):
        cells = grid.load_grid(name).cells
        reactnet = next(c for c in cells
                        if c.config.binarizer["name"] == "reactnet" and c.config.arch == arch)
        fp_arch = "resnet34" if name == "imagenet" else arch
        fp = next(c for c in cells
                  if c.config.binarizer["name"] == "fp" and c.config.arch == fp_arch)
        assert reactnet.teacher_ids == [fp.id]
    omega = grid.load_grid("biper_omega")
    assert [c.config.binarizer["omega0"] for c in omega.cells] == [1, 5, 10, 20, 30, 50, 100]
    assert len({c.id for c in omega.cells}) == 7


def test_ids_are_stable_and_unique(tmp_path):
    a = [c.id for c in grid.load_grid("cifar10").cells]
    b = [c.id for c in grid.load_grid("cifar10").cells]
    assert a == b and len(set(a)) == len(a)
    # paths and devices do not change a cell's id (the same run found from another machine)
    moved = grid.load_grid("cifar10", data_dir=str(tmp_path), device="cpu")
    assert [c.id for c in moved.cells] == a
    assert all(c.config.data_dir == str(tmp_path) for c in moved.cells)


def test_axes_and_per_binarizer_param_axes(tmp_path):
    path = write(tmp_path, """
        datasets = "digits"
        archs = ["resnet20", "vgg_small"]
        binarizers = ["sign_ste", "biper", {name = "recu", tau_max = [0.95, 0.99]}]
        seeds = [3, 7]
        epochs = 2
        subset = 100

        [binarizer.biper]
        omega0 = [10, 20, 30]
        reg_tau = 0.0
    """)
    g = grid.load_grid(path)
    assert g.name == "g"
    # per (arch, seed): sign_ste 1 + biper 3 + recu 2
    assert len(g.cells) == 2 * 2 * (1 + 3 + 2)
    assert [c.config.seed for c in g.cells] == [3] * 12 + [7] * 12     # seed-major order
    biper = [c for c in g.cells if c.config.binarizer["name"] == "biper"]
    assert sorted({c.config.binarizer["omega0"] for c in biper}) == [10, 20, 30]
    assert all(c.config.binarizer["reg_tau"] == 0.0 for c in biper)
    assert {c.config.binarizer.get("tau_max") for c in g.cells
            if c.config.binarizer["name"] == "recu"} == {
        0.95, 0.99}
    assert all(c.config.epochs == 2 and c.config.subset == 100 for c in g.cells)
    # keyword overrides (the CLI's --epochs/--budget/--subset) win over the file
    g2 = grid.load_grid(path, epochs=1, budget=0.5, subset=10)
    assert all((c.config.epochs, c.config.budget, c.config.subset) == (1, 0.5, 10)
               for c in g2.cells)


def test_recipe_and_stage_overrides(tmp_path):
    path = write(tmp_path, """
        name = "sweep"
        datasets = ["digits"]
        archs = ["resnet20"]
        binarizers = ["xnor", "biper"]

        [recipe]
        lr = [0.1, 0.01]
        optimizer = "adam"

        [stage.sine]
        epochs = 4

        [binarizer.biper.stage.binary]
        weight_decay = 0
    """)
    g = grid.load_grid(path)
    assert g.name == "sweep" and len(g.cells) == 4
    assert sorted(c.config.recipe["lr"] for c in g.cells) == [0.01, 0.01, 0.1, 0.1]
    assert all(c.config.recipe["optimizer"] == "adam" for c in g.cells)
    xnor = [c for c in g.cells if c.config.binarizer["name"] == "xnor"]
    biper = [c for c in g.cells if c.config.binarizer["name"] == "biper"]
    assert all(c.config.stage_recipes == {} for c in xnor)   # xnor has no stage "sine"
    assert all(c.config.stage_recipes == {"sine": {"epochs": 4}, "binary": {"weight_decay": 0.0}}
               for c in biper)


def test_duplicates_are_dropped(tmp_path):
    path = write(tmp_path, """
        datasets = ["digits"]
        archs = ["resnet20"]
        binarizers = ["biper", {name = "biper", omega0 = 20.0}, {name = "biper", omega0 = 5}]
    """)
    g = grid.load_grid(path)
    assert len(g.cells) == 2 and g.duplicates == 1


def test_unknown_grid_name():
    with pytest.raises(BnnbenchError, match="unknown grid 'nope'; shipped grids: biper_omega"):
        grid.find_grid("nope")
    with pytest.raises(BnnbenchError, match="grid file not found"):
        grid.find_grid("missing/grid.toml")


BASE = """\
datasets = ["digits"]
archs = ["resnet20"]
binarizers = ["sign_ste", "biper"]
"""


@pytest.mark.parametrize("text, key, line, words", [
    (BASE + "colour = 1\n", "colour", 4, "unknown key"),
    (BASE + "dataset = 'digits'\n", "dataset", 4, "the axis is 'datasets'"),
    (BASE.replace('"sign_ste"', '"nosuch"'), "binarizers", 3, "unknown binarizer 'nosuch'"),
    (BASE.replace('"resnet20"', '"resnet99"'), "archs", 2, "unknown cifar arch 'resnet99'"),
    (BASE.replace('["resnet20"]', '["resnet34"]'), "archs", 2, "known: resnet18, resnet20"),
    (BASE.replace('"digits"', '"mnist"'), "datasets", 1, "unknown dataset 'mnist'"),
    (BASE + "epochs = 'three'\n", "epochs", 4, "must be an integer"),
    (BASE + "budget = 2.0\n", "budget", 4, "fraction"),
    (BASE + "seeds = 0\n", "seeds", 4, "count >= 1"),
    (BASE + "\n[recipe]\nbatch_size = 128\nlrr = 0.1\n", "recipe.lrr", 7, "unknown recipe key"),
    (BASE + "\n[recipe]\nlr = 'fast'\n", "recipe.lr", 6, "must be a float"),
    (BASE + "\n[recipe]\nschedule = 'step'\n", "recipe.schedule", 6, "cosine, linear"),
    (BASE + "\n[stage.warm]\nlr = 0.1\n", "stage.warm", 5, "no binarizer of this grid"),
    (BASE + "\n[binarizer.biper]\nomega0 = 'high'\n", "binarizer.biper.omega0", 6,
     "must be float"),
    (BASE + "\n[binarizer.biper]\nfreq = 3\n", "binarizer.biper.freq", 6, "no parameter 'freq'"),
    (BASE + "\n[binarizer.recu]\ntau_max = 0.9\n", "binarizer.recu", 5, "not in binarizers"),
    (BASE + "binarizer = ['xnor']\n", "binarizer", 4, "the axis is 'binarizers'"),
    (BASE.replace("binarizers", "# no binarizers"), "binarizers", 1, "missing"),
])
def test_errors_name_file_key_and_line(tmp_path, text, key, line, words):
    path = write(tmp_path, text)
    with pytest.raises(BnnbenchError) as info:
        grid.load_grid(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert words in message


def test_toml_syntax_error_names_file_and_line(tmp_path):
    for text, line in ((BASE + "seeds = [1, 2\n", 4), (BASE + "seeds = 1 2\nepochs = 1\n", 4)):
        path = write(tmp_path, text)
        with pytest.raises(BnnbenchError) as info:
            grid.load_grid(path)
        assert str(info.value).startswith(f"{path}:{line}: invalid TOML: "), str(info.value)


def test_describe():
    cell = grid.load_grid("biper_omega").cells[0]
    assert grid.describe(cell.given) == "biper(omega0=1)"


def test_smoke_gives_every_binarizer_the_same_total_epochs():
    smoke = grid.load_grid("smoke")
    totals = {c.config.binarizer["name"]: [r["epochs"] for _, r in c.stages] for c in smoke.cells}
    assert {sum(e) for e in totals.values()} == {10}
    assert totals["biper"] == [5, 5] and totals["reactnet"] == [5, 5] and totals["xnor"] == [10]
    # the command line's per-stage epochs replace the file's total (ReActNet's fp teacher first)
    per_stage = grid.load_grid("smoke", epochs=3)
    assert [sum(r["epochs"] for _, r in c.stages) for c in per_stage.cells] == \
        [3, 3, 3, 3, 3, 6, 3, 6]
    assert {sum(r["epochs"] for _, r in c.stages)
            for c in grid.load_grid("smoke", total_epochs=4).cells} == {4}


def test_same_recipe_grid_trains_one_recipe_and_one_budget():
    same = grid.load_grid("cifar10_same_recipe")
    official = grid.load_grid("cifar10")
    assert [(c.config.arch, c.config.binarizer) for c in same.cells] == \
        [(c.config.arch, c.config.binarizer) for c in official.cells]
    recipes, totals = set(), set()
    for cell in same.cells:
        stages = cell.stages
        totals.add(sum(r["epochs"] for _, r in stages))
        recipes |= {tuple(sorted((k, v) for k, v in r.items() if k not in ("epochs", "binarizer")))
                    for _, r in stages}
    assert totals == {400} and len(recipes) == 1
    assert dict(next(iter(recipes)))["optimizer"] == "sgd"


def test_total_epochs_is_checked(tmp_path):
    path = write(tmp_path, """
        datasets = "digits"
        archs = "resnet20"
        binarizers = "biper"
        total_epochs = 0
    """)
    with pytest.raises(BnnbenchError, match=r"g.toml:4: total_epochs: must be a number of "):
        grid.load_grid(path)
