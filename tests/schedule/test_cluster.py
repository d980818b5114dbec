"""`bnnbench run` against a real two-node Ray cluster on 127.0.0.1, and the driver's signals.

The module's cluster: `ray start --head` and a second node joining it with `ray start
--address`, both on ports of 6350-6549, token authentication on (a token file made for the
test, as `ray get-auth-token --generate` would), each started in a session of its own so that
the teardown stops exactly the processes it started. Every run is a real `bnnbench run`
subprocess; the driver finds the token itself (only the nodes are told RAY_AUTH_MODE).
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grids import snapshot, write_grid
from processes import kill_session, session_processes, trial_processes

from bnnbench.cli import main as cli
from bnnbench.errors import BnnbenchError
from bnnbench.experiment import grid as grids
from bnnbench.schedule import cluster
from bnnbench.store import runstore
from bnnbench.store.reader import CellRecord

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

HEAD = {"port": 6500, "node-manager-port": 6501, "object-manager-port": 6502,
        "dashboard-agent-listen-port": 6503, "dashboard-agent-grpc-port": 6504,
        "runtime-env-agent-port": 6505, "metrics-export-port": 6506,
        "ray-client-server-port": 6507, "min-worker-port": 6360, "max-worker-port": 6399}
SECOND = {"node-manager-port": 6511, "object-manager-port": 6512,
          "dashboard-agent-listen-port": 6513, "dashboard-agent-grpc-port": 6514,
          "runtime-env-agent-port": 6515, "metrics-export-port": 6516,
          "min-worker-port": 6400, "max-worker-port": 6439}
CLOSED_PORT = 6549


def ray_start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start",
                                 "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                                 "--disable-usage-stats", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    return proc


def flags(ports: dict) -> list[str]:
    return [item for key, value in ports.items() for item in (f"--{key}", str(value))]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """(address, environment for drivers) of a two-node cluster; stopped afterwards."""
    root = tmp_path_factory.mktemp("cluster")
    token = root / "auth_token"
    token.write_text(secrets.token_hex(16))
    env = {**os.environ, "RAY_AUTH_TOKEN_PATH": str(token)}
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_MODE", None)
    nodes = []
    try:
        nodes.append(ray_start(["--head", "--include-dashboard", "false", "--temp-dir",
                                str(root / "ray"), *flags(HEAD)], env, root / "head.log"))
        address = f"127.0.0.1:{HEAD['port']}"
        nodes.append(ray_start(["--address", address, "--resources", '{"second": 1}',
                                *flags(SECOND)], {**env, "RAY_AUTH_MODE": "token"},
                               root / "second.log"))
        yield address, env, nodes
    finally:
        for node in nodes:
            kill_session(node)


def gcs_auth_mode(nodes) -> str | None:
    for pid, cmd in session_processes(nodes[0].pid).items():
        if "gcs_server" in cmd:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            return next((e.split(b"=", 1)[1].decode() for e in environ
                         if e.startswith(b"RAY_AUTH_MODE=")), None)
    return None


def bnnbench_run(path: Path, store: Path, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bnnbench", "run", "--grid", str(path),
                             "--out", str(store), *extra], env={**env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def read_until(proc: subprocess.Popen, prefix: str, lines: list[str], timeout=180) -> str:
    """Read the driver's output until a line starting with `prefix` (kept in `lines`)."""
    deadline = time.time() + timeout
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(prefix) or prefix in line:
            return line
        assert time.time() < deadline, "".join(lines)[-3000:]
    raise AssertionError(f"no line with {prefix!r}:\n" + "".join(lines)[-3000:])


def epochs_once(store: Path, cid: str, epochs: int) -> None:
    rows = runstore.read_metrics(store / cid / runstore.METRICS)
    assert [r["global_epoch"] for r in rows] == list(range(epochs)), rows
    assert runstore.read_json(store / cid / runstore.RESULT)["status"] == "finished"


def test_four_cell_grid_on_two_nodes_reports_every_epoch(ray_cluster, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    address, env, nodes = ray_cluster
    if importlib.util.find_spec("ray._private.authentication"):   # Ray >= 2.5x: token auth
        assert gcs_auth_mode(nodes) == "token"      # Ray's default, from the token file
    path = write_grid(tmp_path, '["sign_ste", "xnor"]', seeds=2, epochs=2, subset=128)
    grid = grids.load_grid(path)
    store = tmp_path / "store"
    driver = bnnbench_run(path, store, env, "--address", address, "--log", "tensorboard",
                          "--progress-every", "0")
    out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, out[-3000:]
    assert "ray: 2 nodes, 2 CPUs" in out
    lines = out.splitlines()
    first_progress = next(i for i, s in enumerate(lines) if s.startswith("progress:")
                          and "1/2 top1" in s)
    first_finished = next(i for i, s in enumerate(lines) if "] finished " in s)
    assert first_progress < first_finished        # epoch-level progress before a cell ends
    for cell in grid.cells:
        cid = cell.id
        epochs_once(store, cid, 2)
        rows = runstore.read_metrics(store / cid / runstore.METRICS)
        # Tune got one report per epoch: its TensorBoard logger wrote one scalar per epoch
        events = EventAccumulator(str(store / "tensorboard" / grid.name / cid)).Reload()
        scalars = events.Scalars("ray/tune/top1")
        assert [s.step for s in scalars] == [1, 2]
        assert [s.value for s in scalars] == pytest.approx([r["top1"] for r in rows])


def test_a_killed_trial_is_retried_from_its_checkpoint(ray_cluster, tmp_path):
    address, env, nodes = ray_cluster
    path = write_grid(tmp_path, '["sign_ste", "xnor"]', epochs=3, subset=128)
    grid = grids.load_grid(path)
    store = tmp_path / "store"
    driver = bnnbench_run(path, store, env, "--address", address, "--progress-every", "0")
    lines: list[str] = []
    try:
        read_until(driver, "progress:", lines)        # a cell is past its first epoch
        trials = [pid for node in nodes for pid in trial_processes(node.pid)]
        assert trials
        os.kill(trials[0], signal.SIGKILL)
        lines.append(driver.stdout.read())
        assert driver.wait(timeout=240) == 0, "".join(lines)[-3000:]
    finally:
        kill_session(driver)
    out = "".join(lines)
    assert "retry " in out and "resumes from its checkpoint" in out
    for cell in grid.cells:
        epochs_once(store, cell.id, 3)


@pytest.mark.parametrize("signum,code,word", [(signal.SIGINT, 130, "interrupted"),
                                              (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_signals_stop_the_grid_keep_records_and_say_how_to_resume(ray_cluster, tmp_path,
                                                                   signum, code, word):
    """(That the rerun resumes is shown by tests/test_tune.py's killed-driver test.)"""
    from bnnbench.engine.train import train_cell

    address, env, _ = ray_cluster
    path = write_grid(tmp_path, '["sign_ste", "xnor"]', epochs=3, subset=128)
    first, second = grids.load_grid(path).cells
    store = tmp_path / "store"
    train_cell(first, store / first.id, progress=False)   # finished before the run
    kept = snapshot(store / first.id)
    # SIGINT to a driver with its own local Ray (whose processes must all end with it),
    # SIGTERM to one on the cluster
    extra = ("--address", address) if signum == signal.SIGTERM else ()
    driver = bnnbench_run(path, store, env, "--progress-every", "0", *extra)
    lines: list[str] = []
    try:
        read_until(driver, "progress:", lines)       # the other cell is training
        driver.send_signal(signum)
        lines.append(driver.stdout.read())
        assert driver.wait(timeout=60) == code, "".join(lines)[-3000:]
        deadline = time.time() + 30
        while session_processes(driver.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not session_processes(driver.pid)    # nothing of this run stays behind
    finally:
        kill_session(driver)
    out = "".join(lines)
    assert f"{word}: rerun the same command to resume" in out and "Traceback" not in out
    assert snapshot(store / first.id) == kept
    assert CellRecord(store / second.id).status == "partial"   # resumable, not failed


@pytest.mark.parametrize("how", ["--address", "RAY_ADDRESS"])
def test_an_unreachable_address_fails_fast_with_one_line(tmp_path, how):
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", CLOSED_PORT)) != 0, "the closed port is in use"
    path = write_grid(tmp_path, '["sign_ste"]')
    address = f"127.0.0.1:{CLOSED_PORT}"
    env = {**os.environ, "RAY_ADDRESS": address} if how == "RAY_ADDRESS" else dict(os.environ)
    extra = ["--address", address] if how == "--address" else []
    t0 = time.time()
    done = subprocess.run([sys.executable, "-m", "bnnbench", "run", "--grid", str(path), "--out",
                           str(tmp_path / "store"), *extra], env=env, capture_output=True,
                          text=True, timeout=60)
    assert time.time() - t0 < 30
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"bnnbench: error: no Ray cluster answers at {address} (Connection refused): start one "
        "with `ray start --head --port PORT` or fix --address/RAY_ADDRESS"]


def test_missing_extras_are_named_in_one_line(tmp_path, monkeypatch, capsys):
    path = write_grid(tmp_path, '["sign_ste"]')
    monkeypatch.setitem(sys.modules, "grpc", None)        # Ray's client is not installed
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--grid", str(path), "--out", str(tmp_path / "s"), "--address",
                  "ray://127.0.0.1:10001"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "bnnbench: error: the address ray://127.0.0.1:10001 needs Ray's client: pip install "
        "'bnnbench[client]' (or give the cluster's HOST:PORT)"]
    for kind, package in (("mlflow", "mlflow"), ("wandb", "wandb")):
        monkeypatch.setitem(sys.modules, package, None)
        with pytest.raises(SystemExit):
            cli.main(["run", "--grid", str(path), "--out", str(tmp_path / "s"), "--log", kind])
        assert capsys.readouterr().err.splitlines() == [
            f"bnnbench: error: --log {kind} needs the {package} package: "
            f"pip install 'bnnbench[{kind}]'"]


def test_a_node_that_does_not_see_the_store_is_told_so(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    token = cluster.mark_store(store)
    cluster.check_store(store, token)                     # the driver's own view
    elsewhere = tmp_path / "not-shared"                   # a worker's disk: no marker
    elsewhere.mkdir()
    with pytest.raises(BnnbenchError, match="--out must be on storage every node"):
        cluster.check_store(elsewhere, token)
    (store / cluster.STORE_MARKER).write_text("an older run's marker")
    with pytest.raises(BnnbenchError, match="does not see the run store"):
        cluster.check_store(store, token)
