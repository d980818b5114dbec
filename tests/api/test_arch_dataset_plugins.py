"""An architecture and a dataset as plugins: tests/plugins/tiny_net.py (a backbone of
BinaryConv2d) and tests/plugins/cifar100.py (the official CIFAR-100 python batches, read here
from a tiny fake set in that exact layout), listed, used in a grid (`plugins` key) and trained
for one epoch with `bnnbench train --plugin`."""
from __future__ import annotations

import ast
import json
import pickle
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_run import run_main

import bnnbench
from bnnbench import BnnbenchError
from bnnbench.api import registry
from bnnbench.data import Shape, dataset_shape, load_dataset
from bnnbench.data.datasets import DATASETS
from bnnbench.experiment.cell import CellConfig
from bnnbench.experiment.resolve import resolve
from bnnbench.models import build_model
from bnnbench.models.archs import ARCHS
from registries import forget, isolate

PLUGINS = Path(__file__).parents[1] / "plugins"
TINY_NET, CIFAR100 = PLUGINS / "tiny_net.py", PLUGINS / "cifar100.py"
N_TRAIN, N_TEST = 48, 20


def _drop_plugin_modules() -> None:
    """A plugin file is imported once per process: drop it so that the next test loads it."""
    for name in [m for m in sys.modules if m.startswith(("bnnbench_plugin_tiny_net",
                                                         "bnnbench_plugin_cifar100"))]:
        del sys.modules[name]


@pytest.fixture
def clean(monkeypatch):
    isolate(monkeypatch)
    yield
    _drop_plugin_modules()


@pytest.fixture
def loaded(clean):
    registry.load_plugins([TINY_NET, CIFAR100])


@pytest.fixture
def fake_cifar100(tmp_path) -> tuple[Path, dict]:
    """A folder holding cifar-100-python/{train,test,meta}, pickled as the official files."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "cifar-100-python"
    folder.mkdir(parents=True)
    splits = {}
    for name, n in (("train", N_TRAIN), ("test", N_TEST)):
        splits[name] = {b"filenames": [f"img_{i}.png".encode() for i in range(n)],
                        b"batch_label": f"{name} batch".encode(),
                        b"fine_labels": rng.integers(0, 100, n).tolist(),
                        b"coarse_labels": rng.integers(0, 20, n).tolist(),
                        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
    splits["meta"] = {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                      b"coarse_label_names": [f"s{i}".encode() for i in range(20)]}
    for name, content in splits.items():
        (folder / name).write_bytes(pickle.dumps(content))
    return folder.parent, splits


@pytest.mark.parametrize("plugin", [TINY_NET, CIFAR100])
def test_the_plugins_use_only_public_names(plugin):
    tree = ast.parse(plugin.read_text())
    ours = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            and any(m.split(".")[0] == "bnnbench" for m in
                    ([n.module or ""] if isinstance(n, ast.ImportFrom)
                     else [a.name for a in n.names]))]
    assert ours and all(isinstance(n, ast.ImportFrom) and n.module == "bnnbench" for n in ours)
    assert {a.name for n in ours for a in n.names} <= set(bnnbench.__all__)


def test_cifar100_reads_the_official_layout(loaded, fake_cifar100):
    root, splits = fake_cifar100
    assert dataset_shape("cifar100") == Shape("cifar", 3, 100, 32)
    assert DATASETS.origin("cifar100") == f"file {CIFAR100.resolve()}"
    ds = load_dataset("cifar100", data_dir=str(root), subset=40)
    assert (ds.num_train, ds.num_test, ds.num_classes, ds.in_channels, ds.image_size,
            ds.family) == (40, N_TEST, 100, 3, 32, "cifar")
    # the test images normalised by the whole training split's per-channel statistics
    train = splits["train"][b"data"].reshape(-1, 3, 32, 32) / 255
    mean, std = train.mean(axis=(0, 2, 3)), train.std(axis=(0, 2, 3), ddof=1)
    test = splits["test"][b"data"].reshape(-1, 3, 32, 32) / 255
    ((x, y),) = list(ds.test_batches(1000))
    np.testing.assert_allclose(x.numpy(), (test - mean[:, None, None]) / std[:, None, None],
                               atol=1e-5)
    assert y.tolist() == splits["test"][b"fine_labels"]
    labels = torch.cat([y for _, y in ds.train_batches(16, torch.Generator().manual_seed(0))])
    assert sorted(labels.tolist()) == sorted(splits["train"][b"fine_labels"][:40])


def test_cifar100_names_a_missing_file(loaded, fake_cifar100):
    root, _ = fake_cifar100
    (root / "cifar-100-python" / "meta").unlink()
    with pytest.raises(BnnbenchError, match=r"^no CIFAR-100 in .*cifar-100-python: meta "
                                            r"missing; give --data-dir DIR"):
        load_dataset("cifar100", data_dir=str(root))


def _rows(out: str) -> dict[tuple[str, str], list[str]]:
    """`bnnbench list --archs | --datasets` rows by their first two columns."""
    return {tuple(line.split()[:2]): line.split() for line in out.splitlines()[1:]}


def test_list_shows_the_plugin_arch_and_dataset_beside_the_built_ins(clean, capsys):
    _, archs, _ = run_main(capsys, "list", "--archs")
    _, datasets, _ = run_main(capsys, "list", "--datasets")
    plugins = ("--plugin", str(TINY_NET), "--plugin", str(CIFAR100))
    code, archs_plus, err = run_main(capsys, "list", "--archs", *plugins)
    assert code == 0, err
    code, datasets_plus, err = run_main(capsys, "list", "--datasets", *plugins)
    assert code == 0, err
    rows, rows_plus = _rows(archs), _rows(archs_plus)
    tiny = rows_plus.pop(("cifar", "tiny_net"))
    assert rows_plus == rows
    model = build_model("tiny_net", "sign_ste")
    params = sum(p.numel() for p in model.parameters())
    binary = 16 * 16 * 9 + 16 * 32 * 9                         # the two binary 3×3 convs
    assert tiny == ["cifar", "tiny_net", "tiny", f"{params:,}", f"{binary:,}", "TinyNet"]
    rows, rows_plus = _rows(datasets), _rows(datasets_plus)
    cifar100 = rows_plus.pop(("cifar100", "3×32×32"))
    assert rows_plus == rows
    assert cifar100[2:5] == ["100", "cifar", "CIFAR-100"]
    assert ARCHS["cifar"].origin("tiny_net") == f"file {TINY_NET.resolve()}"


def test_a_grid_names_the_plugin_files_and_trains_nothing_on_dry_run(clean, tmp_path, capsys,
                                                                     fake_cifar100):
    root, _ = fake_cifar100
    for plugin in (TINY_NET, CIFAR100):
        shutil.copy(plugin, tmp_path / plugin.name)
    grid = tmp_path / "g.toml"
    grid.write_text(textwrap.dedent(f"""\
        plugins = ["tiny_net.py", "cifar100.py"]
        datasets = ["cifar100"]
        archs = ["tiny_net"]
        binarizers = ["xnor", "sign_ste"]
        epochs = 1
        subset = 32
        data_dir = "{root}"
        """))
    store = tmp_path / "store"
    code, out, err = run_main(capsys, "run", "--grid", str(grid), "--dry-run", "--out",
                              str(store))
    assert code == 0, err
    plugin_files = [str((tmp_path / p.name).resolve()) for p in (TINY_NET, CIFAR100)]
    for name in ("xnor", "sign_ste"):
        cell = resolve(CellConfig(dataset="cifar100", arch="tiny_net", binarizer=name, epochs=1,
                                  subset=32, plugins=plugin_files))
        (line,) = [line for line in out.splitlines() if line.split()[0] == cell.id]
        assert line.split()[1:6] == ["cifar100", "tiny_net", name, "0", "new"]
    assert out.strip().endswith("2 new") and not store.exists()


def test_train_one_epoch_on_the_plugin_dataset_and_arch(clean, tmp_path, capsys, fake_cifar100):
    root, _ = fake_cifar100
    out = tmp_path / "run"
    code, _, err = run_main(capsys, "train", "--dataset", "cifar100", "--arch", "tiny_net",
                            "--binarizer", "xnor", "--plugin", str(TINY_NET), "--plugin",
                            str(CIFAR100), "--data-dir", str(root), "--epochs", "1",
                            "--subset", "32", "--device", "cpu", "--out", str(out))
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    result = json.loads((out / "result.json").read_text())
    assert config["cell"]["plugins"] == [str(TINY_NET.resolve()), str(CIFAR100.resolve())]
    assert {k: config["model"][k] for k in ("family", "in_channels", "num_classes",
                                            "variant")} == {
        "family": "cifar", "in_channels": 3, "num_classes": 100, "variant": "tiny"}
    assert result["epochs"] == 1 and len((out / "metrics.jsonl").read_text().splitlines()) == 1
    # a new session knows neither plugin: the run folder's record brings both back
    forget(ARCHS["cifar"], "tiny_net")
    forget(DATASETS, "cifar100")
    _drop_plugin_modules()
    assert bnnbench.evaluate_run(out, data_dir=str(root))["top1"] == result["top1"]
