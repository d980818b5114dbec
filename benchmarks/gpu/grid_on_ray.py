"""The device check's grid step: a Ray head of our own, `bnnbench run --address` through it,
the report, the records archived, the head stopped (also when the step's time box ends).

    python3 benchmarks/gpu/grid_on_ray.py --port 6300 --work DIR --data-dir D --grid G.toml \
        --archive OUT/grid.tar.gz -- [bnnbench run options]

The head listens on 127.0.0.1 only, on ports --port .. --port+49, and is stopped through its
own process (`ray start --block` takes its daemons down with it): nothing else on the machine
is touched, unlike `ray stop`. The run goes through `--address` as on a cluster.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

KEEP = ("config.json", "metrics.jsonl", "result.json", "leaderboard.csv", "leaderboard.md")


def head_command(port: int, temp_dir: Path, gpus: int, cpus: int) -> list[str]:
    """`ray start --head --block` with every port it opens inside port..port+49."""
    ports = {"--port": port, "--node-manager-port": port + 1, "--object-manager-port": port + 2,
             "--dashboard-agent-grpc-port": port + 4,
             "--dashboard-agent-listen-port": port + 5, "--metrics-export-port": port + 6,
             "--runtime-env-agent-port": port + 7, "--dashboard-port": port + 8,
             "--min-worker-port": port + 10, "--max-worker-port": port + 49}
    return [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
            "--node-ip-address", "127.0.0.1", "--include-dashboard", "false",
            "--temp-dir", str(temp_dir), "--num-cpus", str(cpus), "--num-gpus", str(gpus),
            *(str(a) for item in ports.items() for a in item)]


def start_head(args, log: Path) -> subprocess.Popen:
    """The head, once it says it is up (at most 90 s)."""
    import torch

    gpus = torch.cuda.device_count()
    head = subprocess.Popen(head_command(args.port, args.work / "ray", gpus, os.cpu_count() or 1),
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        if "block forever" in log.read_text():
            print(f"ray head up on 127.0.0.1:{args.port} ({gpus} GPU)", flush=True)
            return head
        if head.poll() is not None:
            break
        time.sleep(0.5)
    stop_head(head)
    sys.exit(f"the Ray head did not start:\n{log.read_text()[-3000:]}")


def stop_head(head: subprocess.Popen) -> None:
    """SIGTERM to `ray start --block` (it stops its daemons), SIGKILL after 20 s."""
    if head.poll() is None:
        head.terminate()
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


def bnnbench(*argv: str) -> int:
    cmd = [sys.executable, "-m", "bnnbench", *argv]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


def archive(store: Path, out: Path) -> None:
    """The cells' records and the leaderboard (no checkpoints) as one .tar.gz."""
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(store.rglob("*")):
            if path.is_file() and path.name in KEEP and ".ray" not in path.parts:
                tar.add(path, arcname=str(path.relative_to(store.parent)))


def main() -> int:
    parser = argparse.ArgumentParser()
    for flag in ("--work", "--data-dir", "--grid", "--archive"):
        parser.add_argument(flag, type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("run_options", nargs="*")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # the time box: finally runs
    # this head's own token, for it and its clients (not a shared ~/.ray/auth_token)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    store, report = args.work / "grid", args.work / "grid" / "report"
    head = start_head(args, args.work / "ray-head.log")
    try:
        code = bnnbench("run", "--grid", str(args.grid), "--out", str(store), "--address",
                        f"127.0.0.1:{args.port}", "--data-dir", str(args.data_dir),
                        *args.run_options)
    finally:
        stop_head(head)
    bnnbench("report", str(store), "--out", str(report), "--no-figures")
    if (report / "leaderboard.md").exists():
        board = (report / "leaderboard.md").read_text()
        (args.archive.parent / "grid.md").write_text(
            "Short-budget grid (NOT comparable to the published numbers beside it, which "
            "trained hundreds of epochs):\n\n" + board)
    archive(store, args.archive)
    return code


if __name__ == "__main__":
    sys.exit(main())
