"""Shared fixtures: the real CIFAR-10 (built once from ../shared/data into a cache folder)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` are skipped where torch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run `pytest -m cuda` on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def _data_cache() -> Path:
    return Path(os.environ.get("BNNBENCH_TEST_DATA", REPO / ".cache" / "data"))


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """A folder holding cifar-10-batches-py/ (built from ../shared/data/cifar10-jpeg.tar.gz)."""
    root = _data_cache()
    if not (root / "cifar-10-batches-py" / "batches.meta").exists():
        builder = SHARED_DATA / "build_cifar10.py"
        if not builder.exists():
            pytest.skip(f"no CIFAR-10: {root} is empty and {builder} is missing")
        subprocess.run([sys.executable, str(builder), str(root)], check=True)
    return root


@pytest.fixture(scope="session")
def cifar10_jpeg_tree(tmp_path_factory) -> Path:
    """An ImageFolder tree (train/<class>/*.jpg): a few images per class from the shared archive."""
    import tarfile

    archive = SHARED_DATA / "cifar10-jpeg.tar.gz"
    if not archive.exists():
        pytest.skip(f"no CIFAR-10 JPEG archive: {archive} is missing")
    dest = tmp_path_factory.mktemp("jpeg")
    per_class: dict[str, int] = {}
    with tarfile.open(archive) as tf:
        for m in tf:
            if not m.isfile() or not m.name.endswith(".jpg"):
                continue
            split, cls, _ = m.name.split("/")[-3:]
            key = f"{split}/{cls}"
            if per_class.get(key, 0) >= 8:
                continue
            per_class[key] = per_class.get(key, 0) + 1
            tf.extract(m, dest, filter="data")
            if len(per_class) == 20 and all(v >= 8 for v in per_class.values()):
                break
    return dest
