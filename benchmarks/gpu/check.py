"""The device check (issue #15): the first thing a session with a lent GPU runs.

    python3 benchmarks/gpu/check.py                    # on the GPU machine, see README.md
    python3 benchmarks/gpu/check.py --cpu-rehearsal    # here: the same steps, shrunk, on the CPU

Steps, each in its own time box so that one that fails or hangs leaves the others' results:
  setup  the carried wheels (ray and what the device's python lacks) into a folder on
         PYTHONPATH, bnnbench installed editable, CIFAR-10 rebuilt from the carried archive;
  tests  `pytest -m cuda` (tests/engine/test_cuda.py)             } side by side: both check
  grid   seven binarizers × resnet20 on CIFAR-10 through Ray, a   } correctness, not speed
         short budget, four cells per GPU (--gpus-per-trial 0.25);
  bench  `bnnbench bench --compile` per arch and binarizer, alone on the device (timing).
Everything lands in --out (default $OUT): check.log, summary.md (the table printed last),
tests.xml, bench.json/.md, grid.tar.gz (the grid's records, leaderboard, no checkpoints),
env.json. This file uses the standard library only; bnnbench runs in child processes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CARRY = REPO / ".gpu-carry"          # made by prepare.sh; travels with `carry`
SITE = Path("/tmp/bnnbench-site")     # where the carried wheels are installed
SEVEN = ("sign_ste", "xnor", "bireal", "irnet", "reactnet", "recu", "biper")


@dataclasses.dataclass
class Plan:
    """What the check runs and the seconds each step may take (`deadline`: the whole check;
    the bench step ends early enough to merge its rows before it)."""
    device: str
    test_args: tuple[str, ...]
    bench_archs: tuple[str, ...]
    bench_binarizers: tuple[str, ...]
    bench_options: tuple[str, ...]
    bench_fp32: bool
    grid_dataset: str
    grid_binarizers: tuple[str, ...]
    grid_options: tuple[str, ...]
    boxes: dict
    deadline: float


GPU = Plan(
    device="cuda",
    test_args=("-m", "cuda", "-v", "tests/engine/test_cuda.py"),
    bench_archs=("resnet18", "resnet20", "vgg_small"),     # resnet18 first: the headline
    bench_binarizers=("biper", "sign_ste"),
    # compile warm-up (inductor) in the untimed steps; 8 DataLoader workers for the
    # official-style loop (its codes use 2 to 8; fewer would starve it on 16 cores)
    bench_options=("--compile", "--warmup", "5", "--steps", "20", "--repeats", "3",
                   "--workers", "8"),
    bench_fp32=True,
    grid_dataset="cifar10",
    grid_binarizers=SEVEN,
    grid_options=("--epochs", "2", "--gpus-per-trial", "0.25"),
    boxes={"setup": 90, "tests": 150, "grid": 150, "bench": 260, "merge": 30},
    deadline=540,    # the device tool's command limit is 600 s
)
REHEARSAL = Plan(
    device="cpu",
    test_args=("-v", "tests/engine/test_cuda.py", "-k", "planted"),
    bench_archs=("resnet20",),
    bench_binarizers=("sign_ste",),
    bench_options=("--warmup", "1", "--steps", "1", "--repeats", "1", "--workers", "0",
                   "--batch-size", "8", "--threads", "1"),
    bench_fp32=False,
    grid_dataset="digits",
    grid_binarizers=("sign_ste", "biper"),     # one stage and two stages
    grid_options=("--epochs", "1", "--subset", "64", "--gpus-per-trial", "0.25"),
    boxes={"setup": 60, "tests": 120, "grid": 180, "bench": 180, "merge": 60},
    deadline=600,
)


class Log:
    """check.log: every step's command and output, in order."""

    def __init__(self, path: Path):
        self.path = path
        path.write_text("")

    def write(self, text: str) -> None:
        with self.path.open("a") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        print(text.rstrip("\n"), flush=True)


class Step:
    """One child process in its own session, killed with its children when its time is up."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path, box: float):
        self.name, self.argv, self.box = name, argv, box
        self.log_path = log_path
        self.t0 = time.time()
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log_path.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self) -> dict:
        try:
            code = self.proc.wait(timeout=max(1.0, self.t0 + self.box - time.time()))
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            stop_group(self.proc)
            status = f"timed out after {self.box:.0f} s"
        return {"step": self.name, "status": status, "seconds": time.time() - self.t0,
                "command": " ".join(self.argv), "output": self.log_path.read_text()}


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group `proc` leads, SIGKILL it after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Check:
    def __init__(self, plan: Plan, out: Path, ray_port: int, data_dir: Path):
        self.plan, self.out, self.ray_port, self.data_dir = plan, out, ray_port, data_dir
        self.work = Path(f"/tmp/bnnbench-check-{os.getpid()}")
        self.work.mkdir(parents=True, exist_ok=True)
        self.log = Log(out / "check.log")
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "BNNBENCH_DATA": str(data_dir),
                    "BNNBENCH_TEST_DATA": str(data_dir)}
        self.results: list[dict] = []
        self.started = time.time()

    # --- running children ------------------------------------------------------------------
    def start(self, name: str, argv: list[str], box: float) -> Step:
        self.log.write(f"== {name} (at most {box:.0f} s): {' '.join(argv)}")
        return Step(name, argv, self.env, self.work / f"{name}.log", box)

    def finish(self, step: Step, detail: str = "") -> dict:
        result = step.wait()
        self.log.write(f"-- {step.name}: {result['status']} in {result['seconds']:.0f} s\n"
                       + result["output"])
        result["detail"] = detail
        self.results.append(result)
        return result

    def run(self, name: str, argv: list[str], box: float, detail: str = "") -> dict:
        return self.finish(self.start(name, argv, box), detail)

    def python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    # --- setup -----------------------------------------------------------------------------
    def setup(self) -> None:
        """Carried wheels, bnnbench and CIFAR-10, each only where it is missing."""
        box = self.plan.boxes["setup"]
        wheels = sorted(str(w) for w in (CARRY / "wheels").glob("*.whl"))
        if wheels and not self._importable("ray"):
            self.run("setup-wheels", self.python(
                "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                "--no-cache-dir", "--upgrade", "--target", str(SITE), *wheels), box)
            self._import_from(SITE)
        if not self._importable("bnnbench"):
            self.run("setup-bnnbench", self.python(
                "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
                "-e", str(REPO)), box)
        if not self._importable("bnnbench"):   # runs from the tree, without shipped grids
            self._import_from(REPO)
        if not (self.data_dir / "cifar-10-batches-py" / "batches.meta").exists():
            self.run("setup-data", self.python(str(CARRY / "data" / "build_cifar10.py"),
                                               str(self.data_dir)), box)
        self.run("setup-env", self.python(str(HERE / "probe_env.py"),
                                          str(self.out / "env.json")), box)

    def _import_from(self, folder: Path) -> None:
        """Put `folder` first on the children's PYTHONPATH."""
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(folder), *filter(None, [self.env.get("PYTHONPATH")])])

    def _importable(self, module: str) -> bool:
        probe = subprocess.run(self.python("-c", f"import {module}"), env=self.env, cwd="/",
                               capture_output=True)
        return probe.returncode == 0

    # --- the three parts -------------------------------------------------------------------
    def tests(self) -> Step:
        return self.start("tests", self.python(
            "-m", "pytest", *self.plan.test_args, "-p", "no:cacheprovider",
            f"--junitxml={self.out / 'tests.xml'}"), self.plan.boxes["tests"])

    def grid(self) -> Step:
        """A Ray head on 127.0.0.1 (ports ray_port..ray_port+49), the grid through it, the
        head stopped: all in one child (grid_on_ray.py), so the time box covers all of it."""
        grid = self.work / "gpu-check.toml"
        binarizers = json.dumps(self.plan.grid_binarizers)
        grid.write_text(f'name = "gpu-check"\ndatasets = ["{self.plan.grid_dataset}"]\n'
                        f'archs = ["resnet20"]\nbinarizers = {binarizers}\nseeds = 1\n')
        return self.start("grid", self.python(
            str(HERE / "grid_on_ray.py"), "--port", str(self.ray_port),
            "--work", str(self.work), "--data-dir", str(self.data_dir), "--grid", str(grid),
            "--archive", str(self.out / "grid.tar.gz"), "--", *self.plan.grid_options),
            self.plan.boxes["grid"])

    def bench(self) -> None:
        """One `bnnbench bench` per (arch, kinds) so a time box keeps what finished; the
        rows are merged into bench.json/.md."""
        deadline = min(time.time() + self.plan.boxes["bench"],
                       self.started + self.plan.deadline - self.plan.boxes["merge"])
        first = self.plan.bench_binarizers[0]
        parts = [p for arch in self.plan.bench_archs for p in
                 [(arch, ("fp32",), first)] * self.plan.bench_fp32
                 + [(arch, ("engine", "official"), b) for b in self.plan.bench_binarizers]]
        for i, (arch, kinds, binarizer) in enumerate(parts):
            left = deadline - time.time()
            name = f"bench-{arch}-{binarizer if 'engine' in kinds else 'fp32'}"
            if left < 10:
                self.results.append({"step": name, "status": "not reached (time box)",
                                     "seconds": 0.0, "detail": ""})
                continue
            self.run(name, self.python(
                "-m", "bnnbench", "bench", "--device", self.plan.device, "--arch", arch,
                "--binarizer", binarizer, *(a for k in kinds for a in ("--kind", k)),
                *self.plan.bench_options, "--data-dir", str(self.data_dir),
                "--out", str(self.work / "bench" / f"{i:02d}")), left)
        self.run("bench-merge", self.python(str(HERE / "merge_bench.py"),
                                            str(self.work / "bench"), str(self.out)),
                 self.plan.boxes["merge"])

    # --- the summary -----------------------------------------------------------------------
    def summary(self) -> str:
        lines = [f"# Device check ({self.plan.device}) — {time.strftime('%Y-%m-%d %H:%M:%S')} "
                 f"UTC, {time.time() - self.started:.0f} s", "", "| step | status | seconds | "
                 "detail |", "|---|---|---:|---|"]
        lines += [f"| {r['step']} | {r['status']} | {r['seconds']:.0f} | {r['detail']} |"
                  for r in self.results]
        for name in ("bench.md", "grid.md"):
            if (self.out / name).exists():
                lines += ["", (self.out / name).read_text().strip()]
        return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-rehearsal", action="store_true",
                        help="Run the same steps here on the CPU, shrunk (minutes).")
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"),
                        help="Where the results go (default: $OUT).")
    parser.add_argument("--data-dir", type=Path,
                        default=os.environ.get("BNNBENCH_TEST_DATA", "/tmp/bnnbench-data"),
                        help="Folder holding cifar-10-batches-py/ (built there if missing).")
    parser.add_argument("--ray-port", type=int, default=6300,
                        help="The Ray head's first port (it uses this one to +49).")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("--out is required where $OUT is not set")
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(REHEARSAL if args.cpu_rehearsal else GPU, args.out, args.ray_port,
                  args.data_dir.resolve())
    check.setup()
    tests, grid = check.tests(), check.grid()      # side by side: correctness only
    check.finish(tests, " ".join(check.plan.test_args))
    check.finish(grid, f"{len(check.plan.grid_binarizers)} binarizers × resnet20 through Ray; "
                       "leaderboard below")
    check.bench()
    text = check.summary()
    (args.out / "summary.md").write_text(text)
    shutil.rmtree(check.work, ignore_errors=True)   # the store and logs: in $OUT already
    print("\n" + text, flush=True)
    return 0 if all(r["status"] == "ok" for r in check.results) else 1


if __name__ == "__main__":
    sys.exit(main())
