#!/usr/bin/env python3
"""Snapshot every user-visible output of the `bnnbench` CLI, and compare two snapshots.

Why: bnnbench/ is being restructured into sub-packages, and that must not change anything a
user sees. This script records what the CLI prints and writes, run by one interpreter (one
checkout), as plain files in a folder; `compare` then names every byte that differs between a
snapshot of the old code and one of the new code. A plain script (stdlib only, bnnbench only
through `PYTHON -m bnnbench`), not a pytest test: it trains, and it runs two checkouts.

    S=tests/snapshot_outputs.py
    python $S build-store /work/fixed-store.tar.gz --python OLD/bin/python    # once, old code
    python $S snapshot before --python OLD/bin/python --store /work/fixed-store.tar.gz
    python $S snapshot after --python NEW/bin/python --store /work/fixed-store.tar.gz
    python $S compare before after [--allow REGEX ...]

build-store DEST  trains a small run store with `bnnbench train` (digits, resnet20, 4 epochs
    in total, the first 512 images, CPU, 1 thread; about 2 minutes) at STORE_ROOT/runs and
    packs STORE_ROOT into the tarball DEST. Its cells, in one store: sign_ste (seeds 0, 1),
    irnet, fp (also the teacher of) reactnet, biper ω0=20 (seeds 0, 1) and ω0=30 (two stages,
    qe/b metrics, the ω0 sweep figure), a failed cell (the plugin binarizer `fails_late`
    raises in its 2nd epoch), a partial cell (`killed_midway` SIGKILLs its own process in its
    2nd epoch: config.json, metrics and checkpoint, no result.json), a damaged cell (xnor,
    result.json cut in half) and a stale cell (bireal: config.json's cell_id changed, the
    folder renamed to it, as a folder trained under an older recipe). Every cell folder is
    named by the id the code computes, checked against `run --dry-run` of
    STORE_ROOT/fixed.toml, the grid naming them all (and more cells, never trained: "new" or
    missing rows). STORE_ROOT/manifest.json names the cell eval and export use.
snapshot OUT  runs, with --python, each command below in a fresh temporary folder and writes
    OUT/<group>/<case>.txt (the command, exit code, stdout, stderr; a data format's stdout in
    its own .csv/.json file), plus every file the command writes that is under test:
    help/       --version, --help and every command's --help
    list/       list, --archs, --datasets, --grids, --plugin, and per binarizer NAME,
                NAME --recipe cifar10|imagenet|digits (+ --param, --arch forms for biper)
    dry-run/    run --grid NAME --dry-run for every shipped grid (--out DRY_RUN_STORE, never
                created) and for the fixed grid on the fixed store
    report/     report of the fixed store: its stdout (report.txt) and every file it writes
                (leaderboard/: leaderboard.md|csv|tex|html, ranking.csv, figures/*.png|svg);
                the same with --grid (report-grid.txt, leaderboard-grid/: missing cells, no
                figures); --format csv|json|markdown|latex (format-*: stdout only)
    model/      summary of three models, eval and export (+ the exported file) of one cell
    errors/     a few user errors (one line on stderr, exit code 2)
    store-changes.txt   the store's files the commands added, changed or removed ("none")
    (`bench` is not run: it prints timings.) 5 to 8 minutes on 2 busy cores (--jobs 2).
compare A B  compares two snapshot folders file by file: missing and extra files, and any
    byte difference, shown as a short unified diff for text and by column name for CSV.
    Exit 1 if anything differs that --allow does not cover. --allow REGEX (repeatable,
    default none) is for the one intended change of the restructuring (per-epoch binarizer
    metrics move from fixed qe/b columns to namespaced ones, e.g. binarizer/qe): CSV columns
    and the keys of JSON records whose whole name matches REGEX (re.fullmatch) may be added,
    removed or renamed, and their values are not compared; everything else must be equal.

Fixed, so that two snapshots of the same code are equal byte for byte:
  - the run store is built once (training is not bit-reproducible across machines, and
    result.json records timings) and every snapshot unpacks it at the same absolute path,
    STORE_ROOT, so the paths in the outputs are equal (the grid and the plugin file live
    there too: config.json records the plugin's absolute path, the report loads it from it).
    One build or snapshot at a time (a lock file), as they share STORE_ROOT.
  - each command runs in a fresh temporary folder with relative output paths and a fixed
    environment: COLUMNS/LINES (click wraps --help at the terminal's width), LC_ALL, TZ,
    PYTHONHASHSEED, OMP_NUM_THREADS=1 (eval's scores depend on the thread count; the store
    is trained with --threads 1), CUDA_VISIBLE_DEVICES="" (CPU on any machine), MPLBACKEND,
    SOURCE_DATE_EPOCH=0 (the date matplotlib writes into an SVG) and svg.hashsalt through
    MATPLOTLIBRC (matplotlib otherwise salts an SVG's ids with a new random uuid every run);
    BNNBENCH_DATA, BNNBENCH_IMAGENET and RAY_ADDRESS are removed.
Normalised, in every text output (the PNGs, the exported file and anything not text are
compared as they are):
  - the checkout's root (the folder above the imported bnnbench package) -> <CHECKOUT>, the
    interpreter's sys.prefix -> <VENV>, the temporary working folder -> <CWD>: they differ
    between the old and new checkouts and between runs, and are not what is under test.
  - in leaderboard.html, the ids pandas Styler gives each table (T_ + 5 hex digits from a new
    uuid4 on every run; bnnbench passes no uuid) -> T_table1, T_table2, ... in order of first
    appearance: the only part of the report that is not deterministic.
Nothing else is: no timing or date reaches the outputs (the store's timings are fixed in it).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import difflib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STORE_ROOT = Path("/tmp/bnnbench-snapshot-store")   # the fixed store, unpacked here
RUNS = STORE_ROOT / "runs"                            # the run store itself
GRID_FILE = STORE_ROOT / "fixed.toml"                 # a grid naming the store's cells
PLUGIN_FILE = STORE_ROOT / "faulty_binarizers.py"     # binarizers that fail on purpose
MANIFEST = STORE_ROOT / "manifest.json"               # which cells eval/export use
LOCK_FILE = Path("/tmp/bnnbench-snapshot-store.lock")
DRY_RUN_STORE = Path("/tmp/bnnbench-snapshot-dry-run")   # --out of dry runs; never created
TEXT_SUFFIXES = {".txt", ".md", ".csv", ".tex", ".html", ".svg", ".json", ".toml"}

# --- the fixed store --------------------------------------------------------------------------
TRAIN_OPTIONS = ["--dataset", "digits", "--arch", "resnet20", "--total-epochs", "4",
                 "--subset", "512", "--device", "cpu", "--threads", "1"]

PLUGIN_SOURCE = '''\
"""Binarizers that fail on purpose, for the snapshot store (tests/snapshot_outputs.py)."""
import os
import signal

from bnnbench import Binarizer, register, sign_clipped_ste


class _PlainSign(Binarizer):
    def weight(self, w):
        return sign_clipped_ste(w)

    def activation(self, x):
        return sign_clipped_ste(x)


@register("fails_late")
class FailsLate(_PlainSign):
    """sign with a clipped STE that raises in its second epoch: a failed cell."""

    paper = "a failing test plugin"

    def metrics(self, w):
        if float(self.progress) > 0:
            raise RuntimeError("fails_late fails in its second epoch, as planned")
        return {}


@register("killed_midway")
class KilledMidway(_PlainSign):
    """sign with a clipped STE whose process is killed in its second epoch: a partial cell."""

    paper = "a killed test plugin"

    def metrics(self, w):
        if float(self.progress) > 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return {}
'''

GRID_SOURCE = '''\
# The cells of the snapshot store (tests/snapshot_outputs.py); most are trained, the rest
# show as new (dry run) or missing (report --grid).
name = "fixed"
description = "the snapshot store of tests/snapshot_outputs.py"
datasets = ["digits"]
archs = ["resnet20"]
binarizers = ["sign_ste", "irnet", "fp", "reactnet", "xnor", "bireal", "fails_late",
              "killed_midway", {name = "biper", omega0 = [20, 30]}]
seeds = [0, 1]
total_epochs = 4
subset = 512
plugins = ["faulty_binarizers.py"]
'''


@dataclass(frozen=True)
class StoreCell:
    """One cell `build-store` trains: what, and what it becomes in the store."""
    binarizer: str
    seed: int = 0
    params: tuple = ()
    role: str = "finished"   # finished | failed | partial | damaged | stale | eval


STORE_CELLS = (
    StoreCell("sign_ste", 0), StoreCell("sign_ste", 1), StoreCell("irnet"), StoreCell("fp"),
    StoreCell("reactnet"),   # after fp: fp s0 is its teacher, found beside it
    StoreCell("biper", 0, ("omega0=20",), role="eval"), StoreCell("biper", 1, ("omega0=20",)),
    StoreCell("biper", 0, ("omega0=30",)),
    StoreCell("xnor", role="damaged"), StoreCell("bireal", role="stale"),
    StoreCell("fails_late", role="failed"), StoreCell("killed_midway", role="partial"),
)
# the status `run --dry-run` of the fixed grid shows for each role's cell id
DRY_RUN_STATUS = {"finished": "finished", "eval": "finished", "failed": "failed",
                  "partial": "partial", "damaged": "damaged"}


def fixed_environment(rc_file: Path) -> dict:
    """os.environ with everything that could change an output fixed (see the docstring)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BNNBENCH_DATA", "BNNBENCH_IMAGENET", "RAY_ADDRESS")}
    env.update(COLUMNS="100", LINES="50", LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC",
               PYTHONHASHSEED="0", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
               MPLBACKEND="Agg", SOURCE_DATE_EPOCH="0", MATPLOTLIBRC=str(rc_file),
               PYTHONDONTWRITEBYTECODE="1")
    return env


def write_matplotlibrc(folder: Path) -> Path:
    """A matplotlibrc that fixes the salt of SVG ids (only that key: the rest stays default)."""
    rc_file = folder / "matplotlibrc"
    rc_file.write_text("svg.hashsalt: bnnbench-snapshot\n")
    return rc_file


@contextlib.contextmanager
def store_lock():
    """One build or snapshot at a time: they all use STORE_ROOT."""
    with open(LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def bnnbench(python: str, args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """`python -m bnnbench ARGS` in `cwd`: the CLI as a user runs it, output captured."""
    return subprocess.run([python, "-m", "bnnbench", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True)


def train_into_store(python: str, cell: StoreCell, env: dict) -> Path:
    """`bnnbench train` the cell into RUNS/incoming, then rename the folder to the cell id its
    config.json records (a teacher trains beside it, already under its id)."""
    incoming = RUNS / "incoming"
    args = ["train", *TRAIN_OPTIONS, "--binarizer", cell.binarizer, "--seed", cell.seed,
            "--out", incoming, "--plugin", PLUGIN_FILE]
    for param in cell.params:
        args += ["--param", param]
    done = bnnbench(python, args, STORE_ROOT, env)
    expected_ok = cell.role not in ("failed", "partial")
    if (done.returncode == 0) != expected_ok:
        raise SystemExit(f"train of {cell} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    cell_id = json.loads((incoming / "config.json").read_text())["cell_id"]
    folder = RUNS / cell_id
    incoming.rename(folder)
    print(f"  {cell.role:8} {cell_id} (train exit code {done.returncode})")
    return folder


def damage_result(folder: Path) -> None:
    """Cut result.json in half, as a crash of a copy or a full disk might."""
    data = (folder / "result.json").read_bytes()
    (folder / "result.json").write_bytes(data[: len(data) // 2])


def make_stale(folder: Path) -> Path:
    """Give config.json another cell_id, as a cell trained under an older recipe has, and name
    its folder by it; written the way bnnbench writes JSON (indent 2, sorted keys)."""
    config = json.loads((folder / "config.json").read_text())
    prefix = config["cell_id"].rsplit("-", 1)[0]
    old_id = f"{prefix}-{hashlib.sha1(b'an older recipe').hexdigest()[:10]}"
    config["cell_id"] = old_id
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return folder.rename(folder.with_name(old_id))


def check_store_against_grid(python: str, roles: dict[str, str], env: dict) -> None:
    """The grid's dry run must list every trained cell under the folder name it got, with the
    status its role gives it (so the folders are named as `bnnbench run` names them)."""
    done = bnnbench(python, ["run", "--grid", GRID_FILE, "--dry-run", "--out", RUNS],
                    STORE_ROOT, env)
    print(done.stdout + done.stderr)
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    for cell_id, role in roles.items():
        if role == "stale":
            if cell_id not in done.stdout:
                raise SystemExit(f"the dry run does not name the stale folder {cell_id}")
        elif DRY_RUN_STATUS[role] not in lines.get(cell_id, []):
            raise SystemExit(f"the dry run does not show {cell_id} as {DRY_RUN_STATUS[role]}")


def build_store(dest: Path, python: str) -> None:
    with store_lock(), tempfile.TemporaryDirectory(prefix="bnnbench-snapshot-") as tmp:
        env = fixed_environment(write_matplotlibrc(Path(tmp)))
        shutil.rmtree(STORE_ROOT, ignore_errors=True)
        RUNS.mkdir(parents=True)
        PLUGIN_FILE.write_text(PLUGIN_SOURCE)
        GRID_FILE.write_text(GRID_SOURCE)
        roles = {}
        for cell in STORE_CELLS:
            folder = train_into_store(python, cell, env)
            if cell.role == "damaged":
                damage_result(folder)
            if cell.role == "stale":
                folder = make_stale(folder)
            roles[folder.name] = cell.role
        check_store_against_grid(python, roles, env)
        eval_cell = next(cid for cid, role in roles.items() if role == "eval")
        MANIFEST.write_text(json.dumps({"eval": eval_cell, "roles": roles}, indent=2) + "\n")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(dest, "w:gz") as tar:
            tar.add(STORE_ROOT, arcname=STORE_ROOT.name)
        shutil.rmtree(STORE_ROOT)
    print(f"wrote {dest}")


def store_fingerprint() -> dict[str, str]:
    """{path below STORE_ROOT: SHA-256 of its bytes} for every file of the unpacked store."""
    return {str(p.relative_to(STORE_ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(STORE_ROOT.rglob("*")) if p.is_file()}


def store_changes(before: dict[str, str], after: dict[str, str]) -> str:
    """The files of the store that the snapshot's commands added, changed or removed: none is
    expected (a command that writes into the store would make the others' outputs depend on
    the order they ran in)."""
    lines = [f"{'added' if path not in before else 'removed' if path not in after else 'changed'}"
             f" {path}" for path in sorted(before.keys() | after.keys())
             if before.get(path) != after.get(path)]
    return "\n".join(lines or ["none"]) + "\n"


def unpack_store(tarball: Path) -> None:
    """The tarball of build-store, fresh at STORE_ROOT (a previous snapshot's copy removed)."""
    shutil.rmtree(STORE_ROOT, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        names = {m.name.split("/")[0] for m in tar.getmembers()}
        if names != {STORE_ROOT.name}:
            raise SystemExit(f"{tarball} is not a store of build-store (holds {names})")
        tar.extractall(STORE_ROOT.parent, filter="data")


# --- the snapshot -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One command of the snapshot: OUT/<name>.txt gets its exit code, stdout and stderr;
    `stdout_suffix` saves stdout in OUT/<name><suffix> instead (a data format, compared as
    such); `writes` is a folder (relative to the working folder) the command writes, copied to
    the folder of that name beside OUT/<name>.txt."""
    name: str
    args: tuple
    stdout_suffix: str = ""
    writes: str = ""


def table_names(text: str) -> list[str]:
    """The first column of one of `bnnbench list`'s tables, below its header line."""
    return [line.split()[0] for line in text.splitlines()[1:] if line.strip()]


def help_cases() -> list[Case]:
    """--help texts: option names, defaults and wording are user-visible too."""
    commands = ["list", "summary", "train", "run", "report", "bench", "eval", "export"]
    return ([Case("help/version", ("--version",)), Case("help/bnnbench", ("--help",))]
            + [Case(f"help/{c}", (c, "--help")) for c in commands])


def list_cases(binarizers: list[str]) -> list[Case]:
    """`list` in each of its forms; every binarizer the code under test lists."""
    cases = [Case(f"list/{what}", ("list", f"--{what}")) for what in ("archs", "datasets")]
    cases += [Case("list/plugin", ("list", "--plugin", PLUGIN_FILE)),
              Case("list/plugin-fails_late", ("list", "fails_late", "--plugin", PLUGIN_FILE)),
              Case("list/biper--param-omega0=30", ("list", "biper", "--param", "omega0=30")),
              Case("list/biper--recipe-cifar10--arch-vgg_small",
                   ("list", "biper", "--recipe", "cifar10", "--arch", "vgg_small")),
              Case("list/biper--param-omega0=30--recipe-cifar10",
                   ("list", "biper", "--param", "omega0=30", "--recipe", "cifar10"))]
    for name in binarizers:
        cases.append(Case(f"list/{name}", ("list", name)))
        cases += [Case(f"list/{name}--recipe-{dataset}", ("list", name, "--recipe", dataset))
                  for dataset in ("cifar10", "imagenet", "digits")]
    return cases


def dry_run_cases(grids: list[str]) -> list[Case]:
    """The cells (ids, teachers, epochs) of every shipped grid, and the statuses the fixed
    store's folders get (finished, failed, partial, damaged, stale)."""
    cases = [Case(f"dry-run/{g}", ("run", "--grid", g, "--dry-run", "--out", DRY_RUN_STORE / g))
             for g in grids]
    return cases + [Case("dry-run/fixed-store", ("run", "--grid", GRID_FILE, "--dry-run",
                                                 "--out", RUNS))]


def report_cases() -> list[Case]:
    """`report` of the fixed store: with figures, with --grid, and each --format."""
    cases = [Case("report/report", ("report", RUNS, "--out", "leaderboard"),
                  writes="leaderboard"),
             Case("report/report-grid", ("report", RUNS, "--grid", GRID_FILE, "--no-figures",
                                         "--out", "leaderboard-grid"), writes="leaderboard-grid")]
    suffixes = {"csv": ".csv", "json": ".json", "markdown": ".md", "latex": ".tex"}
    return cases + [Case(f"report/format-{fmt}", ("report", RUNS, "--format", fmt,
                                                  "--no-figures", "--out", f"board-{fmt}"),
                         stdout_suffix=suffix) for fmt, suffix in suffixes.items()]


def model_cases(eval_cell: str) -> list[Case]:
    """The commands on one model or one trained cell (built from the fixed store's record)."""
    return [Case("model/summary-resnet20-biper", ("summary", "--arch", "resnet20")),
            Case("model/summary-vgg_small-xnor-digits",
                 ("summary", "--arch", "vgg_small", "--binarizer", "xnor", "--dataset", "digits")),
            Case("model/summary-resnet18-reactnet-imagenet",
                 ("summary", "--arch", "resnet18", "--binarizer", "reactnet", "--dataset",
                  "imagenet")),
            Case("model/eval", ("eval", RUNS / eval_cell)),
            Case("model/export", ("export", RUNS / eval_cell, "-o", "export/model.safetensors"),
                 writes="export")]


def error_cases() -> list[Case]:
    """User errors: one line on stderr naming the bad value, exit code 2 (as the README says)."""
    return [Case("errors/list-unknown", ("list", "nosuch")),
            Case("errors/run-unknown-grid", ("run", "--grid", "nosuch", "--dry-run")),
            Case("errors/train-epochs-0", ("train", "--dataset", "digits", "--arch",
                                           "resnet20", "--epochs", "0", "--out", "cell")),
            Case("errors/summary-unknown-arch", ("summary", "--arch", "nosuch")),
            Case("errors/report-no-store", ("report", "nothing-here", "--out", "r"))]


def normalise(text: str, replacements: list) -> str:
    """`text` with each (value, placeholder) pair's value replaced (see the docstring)."""
    for value, placeholder in replacements:
        text = text.replace(value, placeholder)
    return text


STYLER_ID = re.compile(r"\bT_[0-9a-f]{5}(?![0-9a-zA-Z])")   # pandas Styler's random table id


def number_styler_ids(html: str) -> str:
    """Each pandas Styler table id (T_ + 5 random hex digits) as T_table<n>, n its order of
    first appearance, so that tables stay told apart (see the docstring)."""
    order: dict[str, str] = {}
    return STYLER_ID.sub(lambda m: order.setdefault(m.group(), f"T_table{len(order) + 1}"), html)


@dataclass
class Runner:
    """Runs cases with one interpreter, each in its own fresh working folder, and writes their
    normalised outputs into `out`."""
    python: str
    out: Path
    env: dict
    replacements: list   # (value, placeholder), longest value first

    def run(self, case: Case) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="bnnbench-snapshot-cwd-") as cwd:
            done = bnnbench(self.python, list(case.args), Path(cwd), self.env)
            self.save(case, done, Path(cwd), [(cwd, "<CWD>"), *self.replacements])
        return done

    def save(self, case: Case, done: subprocess.CompletedProcess, cwd: Path,
             replacements: list) -> None:
        target = self.out / case.name
        target.parent.mkdir(parents=True, exist_ok=True)
        stdout = normalise(done.stdout, replacements)
        if case.stdout_suffix:
            target.with_name(target.name + case.stdout_suffix).write_text(stdout)
            stdout = f"(in {target.name}{case.stdout_suffix})\n"
        args = normalise(" ".join(map(str, case.args)), replacements)
        target.with_name(target.name + ".txt").write_text(
            f"$ bnnbench {args}\nexit code: {done.returncode}\n--- stdout ---\n{stdout}"
            f"--- stderr ---\n{normalise(done.stderr, replacements)}")
        if case.writes:
            copy_written(cwd / case.writes, target.parent / case.writes, replacements)


def copy_written(source: Path, dest: Path, replacements: list) -> None:
    """Every file under `source` into `dest`, text normalised, anything else as it is."""
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        copy = dest / path.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".html":
            copy.write_text(number_styler_ids(normalise(path.read_text(), replacements)))
        elif path.suffix in TEXT_SUFFIXES:
            copy.write_text(normalise(path.read_text(), replacements))
        else:
            shutil.copyfile(path, copy)


def interpreter_paths(python: str, env: dict) -> list:
    """The replacements of the docstring: [(checkout root, "<CHECKOUT>"), (sys.prefix,
    "<VENV>")], longest first."""
    code = ("import bnnbench, pathlib, sys; "
            "print(pathlib.Path(bnnbench.__file__).resolve().parent.parent); print(sys.prefix)")
    lines = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True,
                           check=True, cwd="/").stdout.splitlines()
    pairs = [(lines[0], "<CHECKOUT>"), (lines[1], "<VENV>")]
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def take_snapshot(out: Path, python: str, tarball: Path, jobs: int) -> None:
    """Every case's output into `out` (see the docstring); the binarizers and grids are the
    ones the code under test lists, so one it lost or gained shows as a missing/extra file."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists and is not empty: choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with store_lock(), tempfile.TemporaryDirectory(prefix="bnnbench-snapshot-") as tmp:
        env = fixed_environment(write_matplotlibrc(Path(tmp)))
        unpack_store(tarball)
        unpacked = store_fingerprint()
        runner = Runner(python, out, env, interpreter_paths(python, env))
        binarizers = table_names(runner.run(Case("list/list", ("list",))).stdout)
        grids = table_names(runner.run(Case("list/grids", ("list", "--grids"))).stdout)
        eval_cell = json.loads(MANIFEST.read_text())["eval"]
        cases = (report_cases() + model_cases(eval_cell) + dry_run_cases(grids)
                 + list_cases(binarizers) + help_cases() + error_cases())
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(runner.run, cases))
        (out / "store-changes.txt").write_text(store_changes(unpacked, store_fingerprint()))
        shutil.rmtree(STORE_ROOT)
    print(f"snapshot of {len(cases) + 2} commands ({python}) in {out}: "
          f"{time.monotonic() - started:.0f} s")


# --- comparing two snapshots ------------------------------------------------------------------
def relative_files(folder: Path) -> set[str]:
    """Every file below `folder`, as a path relative to it (how two snapshots are matched)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def allowed(name: str, allow: list[re.Pattern]) -> bool:
    """Whether a column/key may differ: its whole name matches an --allow pattern."""
    return any(pattern.fullmatch(name) for pattern in allow)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    return (rows[0], rows[1:]) if rows else ([], [])


def compare_columns(columns_a: list[str], columns_b: list[str],
                    allow: list[re.Pattern]) -> list[str]:
    """The differences between two header rows once the allowed columns are set aside, plus
    notes on the allowed ones ("allowed: ..."); the kept columns must be in the same order."""
    kept_a = [c for c in columns_a if not allowed(c, allow)]
    kept_b = [c for c in columns_b if not allowed(c, allow)]
    problems = []
    only_a = [c for c in kept_a if c not in kept_b]
    only_b = [c for c in kept_b if c not in kept_a]
    if only_a or only_b:
        problems.append(f"columns only in A: {only_a}; only in B: {only_b}")
    elif kept_a != kept_b:
        problems.append(f"columns in another order: A {kept_a}, B {kept_b}")
    gone = [c for c in columns_a if allowed(c, allow) and c not in columns_b]
    new = [c for c in columns_b if allowed(c, allow) and c not in columns_a]
    if gone or new:
        problems.append(f"allowed: columns only in A {gone}, only in B {new}")
    return problems


def compare_csv(path_a: Path, path_b: Path, allow: list[re.Pattern]) -> list[str]:
    """Differences between two CSV files by column name; those of allowed columns are notes
    ("allowed: ...")."""
    (head_a, rows_a), (head_b, rows_b) = read_csv(path_a), read_csv(path_b)
    problems = compare_columns(head_a, head_b, allow)
    if len(rows_a) != len(rows_b):
        return problems + [f"{len(rows_a)} rows in A, {len(rows_b)} in B"]
    table_a = [dict(zip(head_a, row)) for row in rows_a]
    table_b = [dict(zip(head_b, row)) for row in rows_b]
    for column in (c for c in head_a if c in head_b):
        changed = [i for i, (a, b) in enumerate(zip(table_a, table_b)) if a[column] != b[column]]
        if changed:
            i = changed[0]
            problems.append(f"{'allowed: ' if allowed(column, allow) else ''}column {column!r} "
                            f"differs in {len(changed)} row(s), e.g. row {i + 1}: "
                            f"{table_a[i][column]!r} vs {table_b[i][column]!r}")
    return problems or ["bytes differ, every value is equal (quoting, line ends?)"]


def without_allowed_keys(value, allow: list[re.Pattern]):
    """A JSON value with every object key matching `allow` removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_allowed_keys(v, allow) for k, v in value.items()
                if not allowed(k, allow)}
    if isinstance(value, list):
        return [without_allowed_keys(v, allow) for v in value]
    return value


def compare_json(path_a: Path, path_b: Path, allow: list[re.Pattern]) -> list[str]:
    """Equal once allowed keys are dropped (a note), else the text diff."""
    try:
        a, b = (json.loads(p.read_text()) for p in (path_a, path_b))
    except ValueError:
        return compare_text(path_a, path_b)
    if without_allowed_keys(a, allow) == without_allowed_keys(b, allow):
        return ["allowed: differs only in allowed keys"]
    return compare_text(path_a, path_b)


def compare_text(path_a: Path, path_b: Path, max_lines: int = 40) -> list[str]:
    """A unified diff, cut at `max_lines` so that one broken file does not hide the others."""
    diff = list(difflib.unified_diff(path_a.read_text().splitlines(),
                                     path_b.read_text().splitlines(), "A", "B", lineterm="", n=1))
    shown = diff[:max_lines] + ([f"... {len(diff) - max_lines} more diff lines"]
                                if len(diff) > max_lines else [])
    return ["text differs:", *shown]


def compare_file(path_a: Path, path_b: Path, allow: list[re.Pattern]) -> list[str]:
    """[] when equal; else the differences (entries starting "allowed:" are not failures)."""
    data_a, data_b = path_a.read_bytes(), path_b.read_bytes()
    if data_a == data_b:
        return []
    if path_a.suffix == ".csv":
        return compare_csv(path_a, path_b, allow)
    if path_a.suffix == ".json":
        return compare_json(path_a, path_b, allow)
    if path_a.suffix in TEXT_SUFFIXES:
        return compare_text(path_a, path_b)
    return [f"bytes differ ({len(data_a)} vs {len(data_b)} bytes)"]


def compare_snapshots(a: Path, b: Path, allow: list[re.Pattern]) -> int:
    """Print every difference between snapshot folders `a` and `b`; 1 if any is not allowed."""
    files_a, files_b = relative_files(a), relative_files(b)
    failures = 0
    for name in sorted(files_a - files_b):
        print(f"MISSING in B: {name}")
        failures += 1
    for name in sorted(files_b - files_a):
        print(f"EXTRA in B: {name}")
        failures += 1
    for name in sorted(files_a & files_b):
        problems = compare_file(a / name, b / name, allow)
        failing = [p for p in problems if not p.startswith("allowed:")]
        if problems:
            print(f"{'DIFFERS' if failing else 'ALLOWED'}: {name}")
            print("    " + "\n    ".join(problems))
        failures += bool(failing)
    print(f"{len(files_a | files_b)} files, {failures} differ"
          + (" (beyond --allow)" if allow else ""))
    return 1 if failures else 0


# --- command line -----------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-store", help="train the fixed run store into a tarball")
    build.add_argument("dest", type=Path)
    build.add_argument("--python", default=sys.executable,
                       help="the interpreter whose bnnbench trains it (default: this one)")
    snap = commands.add_parser("snapshot", help="record every output into a folder")
    snap.add_argument("out", type=Path)
    snap.add_argument("--python", required=True, help="the interpreter whose bnnbench runs")
    snap.add_argument("--store", type=Path, required=True, help="the tarball of build-store")
    snap.add_argument("--jobs", type=int, default=2, help="commands at a time (default 2)")
    comp = commands.add_parser("compare", help="compare two snapshot folders")
    comp.add_argument("a", type=Path)
    comp.add_argument("b", type=Path)
    comp.add_argument("--allow", action="append", default=[], metavar="REGEX",
                      help="CSV columns / JSON keys (whole name) that may differ (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "build-store":
        build_store(args.dest.resolve(), args.python)
    elif args.command == "snapshot":
        take_snapshot(args.out.resolve(), args.python, args.store.resolve(), args.jobs)
    else:
        return compare_snapshots(args.a, args.b, [re.compile(r) for r in args.allow])
    return 0


if __name__ == "__main__":
    sys.exit(main())
