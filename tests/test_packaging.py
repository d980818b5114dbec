"""The wheel ships the built-ins as bnnbench.binarizers (no top-level `binarizers` package),
the grids with their README and the published reference numbers."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BUILD_OUTPUTS = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info",
                                       "__pycache__", ".cache", "results/runs", ".pytest_cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from a clean copy of the sources (an in-tree build/ could add stale
    files), with this environment's setuptools (offline) or else an isolated build's."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=BUILD_OUTPUTS)
    shutil.rmtree(src / "results" / "runs", ignore_errors=True)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
             "-q", "-w", str(tmp), str(src)]
    proc = subprocess.run(build + ["--no-index", "--no-build-isolation"], capture_output=True,
                          text=True)
    if proc.returncode != 0:   # e.g. a setuptools < 70.1 without `wheel`: fetch a current one
        proc = subprocess.run(build, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip()[-200:]}")
    return zipfile.ZipFile(next(tmp.glob("bnnbench-*.whl")))


def test_the_wheel_ships_binarizers_grids_and_references(wheel):
    names = set(wheel.namelist())
    for folder, package, pattern in [("binarizers", "bnnbench/binarizers", "*.py"),
                                     ("tasks", "bnnbench/tasks", "*.toml"),
                                     ("tasks", "bnnbench/tasks", "README.md"),
                                     ("results/reference", "bnnbench/reference", "*.csv")]:
        files = sorted((REPO / folder).glob(pattern))
        assert files, (folder, pattern)
        assert {f"{package}/{f.name}" for f in files} <= names
    assert not any(name.startswith("binarizers/") for name in names)
