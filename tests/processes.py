"""The processes of a `bnnbench run` started in its own session: found, and killed with SIGKILL
(shared by the kill tests of engine, schedule and experiment)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def session_processes(sid: int) -> dict[int, str]:
    """{pid: cmdline} of the live (not zombie) processes of session `sid`, from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()   # state ppid pgrp session ...
        if fields[0] != "Z" and int(fields[3]) == sid:
            out[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return out


def trial_processes(sid: int) -> list[int]:
    """The Ray workers of session `sid` that run a trial (not idle workers, not Ray's agents)."""
    return sorted(pid for pid, cmd in session_processes(sid).items()
                  if cmd.startswith("ray::") and ("ImplicitFunc" in cmd or "run_cell" in cmd))


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the driver, its process group and every other process of its session by pid
    (Ray's workers have process groups of their own, and go on training for a while when only
    the group dies), until the group is gone (ProcessLookupError) and the session is empty;
    all of them started by this test. Raises if something survives 30 s."""
    sid = proc.pid
    proc.send_signal(signal.SIGKILL)   # only while it is not reaped: never a reused pid
    proc.wait()
    deadline = time.time() + 30
    while True:
        try:
            os.killpg(sid, signal.SIGKILL)
            group_gone = False
        except ProcessLookupError:
            group_gone = True
        left = session_processes(sid)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if group_gone and not left:
            return
        assert time.time() < deadline, f"processes of session {sid} survive SIGKILL: {left}"
        time.sleep(0.02)
