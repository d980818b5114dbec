"""benchmarks/gpu/check.py keeps working before a GPU comes: its CPU rehearsal runs every
step (tests, the grid through its own Ray head, bench, the merge) shrunk, writes the files a
device session brings back, and leaves no Ray process behind."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RAY_PORT = 6300          # the head uses RAY_PORT .. RAY_PORT + 49


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


def test_cpu_rehearsal_runs_every_step_and_writes_what_comes_back(cifar10_root, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(REPO / "benchmarks/gpu/check.py"),
                             "--cpu-rehearsal", "--out", str(out), "--data-dir",
                             str(cifar10_root), "--ray-port", str(RAY_PORT)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed = proc.communicate(timeout=600)[0]
    summary = (out / "summary.md").read_text()
    assert proc.returncode == 0, summary + (out / "check.log").read_text()[-4000:]
    assert printed.rstrip().endswith(summary.rstrip().splitlines()[-1])   # the table, last
    steps = {line.split(" | ")[0].strip("| ") for line in summary.splitlines()
             if line.startswith("| ") and " | ok | " in line}
    assert {"tests", "grid", "bench-resnet20-sign_ste", "bench-merge"} <= steps, summary
    assert _processes_mentioning(f"bnnbench-check-{proc.pid}") == []   # the Ray head stopped
    assert len(list(out.iterdir())) <= 8                               # the device's limit

    suite = ET.parse(out / "tests.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) >= 2 and suite.get("failures") == suite.get("errors") == "0"
    bench = json.loads((out / "bench.json").read_text())
    assert {r["kind"] for r in bench["rows"]} == {"engine", "official"}
    assert all(r["images_per_s"] > 0 and r["timer"] == "wall_clock" for r in bench["rows"])
    with tarfile.open(out / "grid.tar.gz") as tar:
        results = [json.load(tar.extractfile(m)) for m in tar if m.name.endswith("result.json")]
        assert any(m.name.endswith("leaderboard.csv") for m in tar)
        assert not any("checkpoint" in m.name for m in tar)
    assert sorted(r["status"] for r in results) == ["finished", "finished"]
    assert "Short-budget" in (out / "grid.md").read_text()
    assert json.loads((out / "env.json").read_text())["torch"]
