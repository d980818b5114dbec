"""Fault injection: SIGKILLs at random moments of a small digits grid, each followed by a rerun.

Each round starts `python -m bnnbench run --grid FILE --out STORE --max-concurrent 2` in a new
session, waits until that run is training (its first write into a cell folder) plus a random
delay, then SIGKILLs one victim drawn at random: the driver, one trial process (a Ray worker
running a cell, "ray::ImplicitFunc..."), or the driver's whole process group. Then every
process of that session is killed (the Ray processes the driver started; Ray's workers sit in
process groups of their own, so they are found by session id) and the next round reruns the
same command. A last run goes to completion. At the end every cell of the grid is finished
exactly once, each metrics.jsonl holds each epoch exactly once, no other cell folder exists,
and every record that had finished before a kill is unchanged (bytes and mtime of every file).

Each `bnnbench run` starts its own local Ray (about 12-15 s on a 2-core machine before the
first cell trains), so 20 kills cannot fit in 2 minutes: the number of kills is the environment
variable BNNBENCH_KILLS, default 4 (70-90 s on a 2-core machine without a GPU); the issue's 20
with BNNBENCH_KILLS=20 (about 6 minutes; the grid gets more seeds, so that it does not finish
before the last kill). The random moments come from BNNBENCH_KILL_SEED (default: the clock);
the seed is printed and named in every assertion message, so a failure reruns with
BNNBENCH_KILL_SEED=<seed> (the same victims and delays; the delays count from the run's own
first write, so the moment within training still varies a little with the machine's speed).
"""
from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from processes import kill_session, trial_processes

from bnnbench.experiment import grid as grids
from bnnbench.store import runstore

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

DEFAULT_KILLS = 4
START_TIMEOUT = 120      # seconds a run may take to start training (Ray start-up included)
RUN_TIMEOUT = 180        # seconds the last run may take to finish the grid
VICTIMS = ("driver", "trial", "group")


# --- the grid and its records ----------------------------------------------------------------
def write_grid(tmp_path: Path, seeds: int) -> Path:
    path = tmp_path / "kills.toml"
    path.write_text(textwrap.dedent(f"""\
        datasets = ["digits"]
        archs = ["resnet20"]
        binarizers = ["sign_ste", "xnor", "biper"]
        seeds = {seeds}
        epochs = 2
        subset = 1024
        """))
    return path


def snapshot(folder: Path) -> dict:
    """Every file's bytes and mtime (as tests/test_tune.py), read again if a file vanished
    while it was read (a finishing trial removing checkpoint.prev.pt)."""
    for _ in range(20):
        try:
            return {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
                    for p in sorted(folder.iterdir()) if p.is_file()}
        except FileNotFoundError:
            time.sleep(0.05)
    raise AssertionError(f"{folder} kept changing while it was read")


def finished_cells(store: Path) -> dict[str, dict]:
    """{cell folder name: snapshot} of the folders whose result.json says "finished"."""
    out = {}
    for result in sorted(store.glob("*/" + runstore.RESULT)):
        if result.parent.name.startswith("."):
            continue
        try:
            status = runstore.read_json(result).get("status")
        except Exception:  # noqa: BLE001 - a damaged record is not a finished one
            continue
        if status == "finished":
            out[result.parent.name] = snapshot(result.parent)
    return out


def describe_change(first: dict, now: dict) -> str:
    lines = []
    for name in sorted(set(first) | set(now)):
        if name not in now:
            lines.append(f"{name}: removed")
        elif name not in first:
            lines.append(f"{name}: added ({len(now[name][0])} bytes)")
        elif first[name] != now[name]:
            old, new = first[name][0], now[name][0]
            same = old == new
            at = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b),
                      min(len(old), len(new)))   # the first byte that differs
            text = "" if same or name.endswith(".pt") else (
                f"\n      from byte {at}, before: {old[max(0, at - 200):at + 400]!r}"
                f"\n      from byte {at}, now:    {new[max(0, at - 200):at + 400]!r}")
            lines.append(f"{name}: {'mtime' if same else 'bytes and mtime'} changed "
                         f"({first[name][1]} -> {now[name][1]}){text}")
    return "; ".join(lines)


def training_writes(store: Path, since_ns: int) -> bool:
    """Whether a cell folder got a record (config.json, metrics, checkpoint) since `since_ns`."""
    for path in store.glob("*/*"):
        if path.parent.name.startswith(".") or path.name.startswith("."):
            continue
        try:
            if path.stat().st_mtime_ns >= since_ns:
                return True
        except FileNotFoundError:
            pass
    return False


# --- processes ---------------------------------------------------------------------------------






def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no output)"


# --- the test ----------------------------------------------------------------------------------
def test_random_kills_then_reruns_finish_every_cell_once(tmp_path):
    kills = int(os.environ.get("BNNBENCH_KILLS", DEFAULT_KILLS))
    seed = int(os.environ.get("BNNBENCH_KILL_SEED", time.time_ns() % 1_000_000_007))
    # a round finishes about half a cell to one cell, a seed has 3: more kills need more
    # seeds, or the grid would finish before the last kill
    seeds = max(2, math.ceil(kills / 3))
    print(f"\nkill test: BNNBENCH_KILL_SEED={seed} BNNBENCH_KILLS={kills} ({seeds} seeds)",
          flush=True)
    ctx = f"[BNNBENCH_KILL_SEED={seed} BNNBENCH_KILLS={kills}]"
    rng = random.Random(seed)
    t_start = time.time()

    path = write_grid(tmp_path, seeds)
    grid = grids.load_grid(path)
    cells = {c.id: c for c in grid.cells}
    store = tmp_path / "store"
    command = [sys.executable, "-m", "bnnbench", "run", "--grid", str(path), "--out", str(store),
               "--max-concurrent", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}   # a killed driver's log is complete
    logs: list[Path] = []
    # cell -> its first snapshot as a finished record (result.json is written last, so a
    # finished record is at rest: nothing may change it afterwards)
    records: dict[str, dict] = {}
    delivered = 0

    def check_records(when: str) -> None:
        for cid, first in records.items():
            now = snapshot(store / cid)
            assert now == first, (
                f"{ctx} {when}: the finished record {store / cid} changed: "
                f"{describe_change(first, now)}")

    def kill_at_random(driver: subprocess.Popen, log: Path, round_no: int, victim: str,
                       delay: float, pick: float, grace: float) -> str | None:
        """Wait for training plus `delay`, SIGKILL the victim; what was killed, or None if the
        run ended by itself first (then it must have succeeded). Only a driver that is not
        reaped (poll() is None) is signalled: its pid cannot have been reused."""
        began = time.time_ns()
        deadline = time.time() + START_TIMEOUT
        while driver.poll() is None and not training_writes(store, began):
            assert time.time() < deadline, (
                f"{ctx} round {round_no}: the run did not start training in "
                f"{START_TIMEOUT} s:\n{tail(log)}")
            time.sleep(0.05)
        moment = time.time() + delay
        while driver.poll() is None and time.time() < moment:
            time.sleep(0.02)
        trials = []
        if victim == "trial":   # a worker between two cells runs none: wait a little for one
            wait_until = time.time() + 3
            while (driver.poll() is None and not (trials := trial_processes(driver.pid))
                   and time.time() < wait_until):
                time.sleep(0.05)
        if driver.poll() is not None:   # nothing was left to train before the moment came
            assert driver.returncode == 0, (
                f"{ctx} round {round_no}: a rerun failed (exit {driver.returncode}):\n"
                f"{tail(log)}")
            return None
        for cid, snap in finished_cells(store).items():   # finished before this kill
            records.setdefault(cid, snap)
        if victim == "trial" and trials:
            target = trials[int(pick * len(trials))]
            os.kill(target, signal.SIGKILL)
            driver_end = time.time() + grace    # the driver goes on without that trial
            while driver.poll() is None and time.time() < driver_end:
                time.sleep(0.05)
            return f"trial pid {target} (of {len(trials)} running)"
        if victim == "group":
            os.killpg(driver.pid, signal.SIGKILL)
            return "driver's process group"
        os.kill(driver.pid, signal.SIGKILL)
        return "driver" + (" (no trial process was running)" if victim == "trial" else "")

    for round_no in range(1, kills + 1):
        log = tmp_path / f"round{round_no:02d}.log"
        logs.append(log)
        # every round draws the same numbers, whatever happens: the seed replays the victims
        victim = rng.choice(VICTIMS)
        delay = rng.uniform(0.0, 2.5)      # seconds after the round's first training write
        pick = rng.random()                # which trial, if the victim is a trial
        grace = rng.uniform(0.5, 2.0)      # the driver goes on after its trial was killed
        with log.open("wb") as out:
            driver = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
        try:
            what = kill_at_random(driver, log, round_no, victim, delay, pick, grace)
        finally:
            kill_session(driver)
        if what is None:
            print(f"round {round_no}: the run finished the grid (exit 0) before its kill",
                  flush=True)
            break
        delivered += 1
        check_records(f"after kill {round_no} (the {what})")
        for cid, snap in finished_cells(store).items():   # finished by now: at rest
            records.setdefault(cid, snap)
        print(f"round {round_no}: killed the {what} {delay:.2f} s into training; "
              f"{len(finished_cells(store))}/{len(cells)} cells finished "
              f"({time.time() - t_start:.0f} s)", flush=True)

    # the same command once more, to completion
    log = tmp_path / "final.log"
    logs.append(log)
    with log.open("wb") as out:
        driver = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    try:
        try:
            code = driver.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{ctx} the last run did not finish in {RUN_TIMEOUT} s:\n{tail(log)}")
    finally:
        kill_session(driver)
    print(f"last run: exit {code}; {delivered} kills delivered; "
          f"{time.time() - t_start:.0f} s in all", flush=True)
    assert code == 0, f"{ctx} the last run failed (exit {code}):\n{tail(log)}"
    assert delivered >= min(kills, 1), f"{ctx} no kill landed while the grid trained"

    # every cell of the grid: one folder, finished, each epoch recorded once
    entries = sorted(p.name for p in store.iterdir() if not p.name.startswith("."))
    assert entries == sorted(cells), (
        f"{ctx} the store holds {entries}, the grid's cells are {sorted(cells)}")
    for cid, cell in cells.items():
        folder = store / cid
        result = runstore.read_json(folder / runstore.RESULT)
        stages = cell.stages
        planned = [(stage, epoch) for stage, r in stages for epoch in range(r["epochs"])]
        rows = runstore.read_metrics(folder / runstore.METRICS)
        metrics_text = (folder / runstore.METRICS).read_text()
        assert result["status"] == "finished" and result["epochs"] == len(planned), (
            f"{ctx} {folder / runstore.RESULT}: {result}")
        assert [r["global_epoch"] for r in rows] == list(range(len(planned))), (
            f"{ctx} {folder / runstore.METRICS} does not hold each epoch once:\n{metrics_text}")
        pairs = [(r["stage"], r["epoch"]) for r in rows]
        assert pairs == planned and len(set(pairs)) == len(pairs), (
            f"{ctx} {folder / runstore.METRICS}: (stage, epoch) {pairs}, planned {planned}")
    assert max(len(c.stages) for c in cells.values()) == 2   # biper's 2 stages

    # finished once: records seen finished never changed, and no driver finished a cell twice
    check_records("at the end")
    said = "".join(p.read_text(errors="replace") for p in logs)
    twice = {cid: said.count(f"finished {cid}:") for cid in cells
             if said.count(f"finished {cid}:") > 1}
    assert not twice, f"{ctx} cells reported finished by more than one run: {twice}"
    # no debris: the temporary file of an atomic write that a kill interrupted is removed when
    # the cell resumes, and a finished cell keeps no checkpoint.prev.pt or error.log
    leftovers = sorted(f"{cid}/{p.name} ({p.stat().st_size} bytes)" for cid in cells
                       for p in (store / cid).iterdir()
                       if p.name in (runstore.PREVIOUS, runstore.ERROR_LOG)
                       or (p.name.startswith(".") and p.name != ".lock"))
    assert not leftovers, f"{ctx} finished cells keep debris of kills: {leftovers}"
