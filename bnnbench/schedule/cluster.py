"""Ray for a grid: start a local Ray or join a cluster, size the trials, check shared storage.

Joining: `--address HOST:PORT`, `auto` (a cluster started on this machine) or `RAY_ADDRESS`
when no --address is given; `ray://HOST:PORT` needs Ray's client (`bnnbench[client]`). A
cluster started with `ray start --head` uses token authentication when a token exists
(~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH); Ray enables it by itself only for
`auto`, so with an explicit address the driver enables it too when it finds a token. An address
where nothing listens fails after a short TCP probe instead of Ray's minutes of retries.
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from pathlib import Path

from ..errors import BnnbenchError

PROBE_SECONDS = 5                    # how long a cluster address may take to answer TCP
STORE_MARKER = ".bnnbench-store"     # written by the driver; every trial checks it sees it


def quiet_ray_env() -> None:
    """Before Ray is imported: Tune's auto loggers (CSV/JSON/TensorBoard) off (the run store
    has it all; --log adds what the user asks for), no per-iteration tables, no "Tip:" banners,
    and SIGINT reaching the driver as KeyboardInterrupt (Tune's own handler would end the run
    quietly with exit 0)."""
    for key, value in {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0",
                       "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1", "RAY_DEDUP_LOGS": "0",
                       "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000",
                       "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
                       "TUNE_DISABLE_SIGINT_HANDLER": "1"}.items():
        os.environ.setdefault(key, value)


def connect(address: str | None) -> bool:
    """Start a local Ray (no address, no RAY_ADDRESS) or join the cluster at `address`;
    returns whether this call started Ray (False when it was up already)."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        _check_address(address)
        _use_token_if_present()   # before Ray is imported: it reads RAY_AUTH_MODE then
    import ray

    if ray.is_initialized():
        return False
    kwargs = dict(log_to_driver=False, logging_level=logging.ERROR)
    sigterm = signal.getsignal(signal.SIGTERM)   # ray.init replaces it with exit(15)
    if address is None:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **kwargs)
    else:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
            first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise BnnbenchError(f"cannot join the Ray cluster at {address}: {first} (is `ray "
                                "start --head` running there, with this Ray version and auth "
                                "token?)") from None
    if sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm)
    return True


def _check_address(address: str) -> None:
    """A ray:// address needs Ray's client; a HOST:PORT must accept a TCP connection."""
    if address.startswith("ray://"):
        try:
            import grpc  # noqa: F401 - what Ray's client needs beyond ray[tune]
        except ImportError:
            raise BnnbenchError(f"the address {address} needs Ray's client: pip install "
                                "'bnnbench[client]' (or give the cluster's HOST:PORT)") from None
        return
    if address == "auto":
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise BnnbenchError(f"--address {address!r} must be HOST:PORT, auto or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        raise BnnbenchError(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start "
                            "one with `ray start --head --port PORT` or fix --address/RAY_ADDRESS"
                            ) from None


def _use_token_if_present() -> None:
    """Token authentication, as `ray start --head` does, when a token is found and the user
    did not set RAY_AUTH_MODE."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    if os.environ.get("RAY_AUTH_TOKEN") or Path(path).is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def resources(cpus_per_trial, gpus_per_trial, joined: bool, echo) -> tuple[float, float]:
    """(CPUs, GPUs) per trial: the user's, or the cluster shared out; checked against a local
    Ray's size (a cluster may grow with an autoscaler)."""
    import ray

    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 1.0), total.get("GPU", 0.0)
    if gpus_per_trial is None:
        gpus_per_trial = 1.0 if gpus else 0.0
    elif gpus_per_trial > 0 and not gpus:
        echo(f"note: the Ray cluster has no GPU; --gpus-per-trial {gpus_per_trial:g} ignored, "
             "cells run on the CPU")
        gpus_per_trial = 0.0
    if gpus_per_trial < 0 or (cpus_per_trial is not None and cpus_per_trial <= 0):
        raise BnnbenchError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if cpus_per_trial is None:
        slots = int(gpus // gpus_per_trial) if gpus_per_trial else int(cpus)
        cpus_per_trial = float(max(1, int(cpus // max(1, slots))))
    if not joined:
        if gpus_per_trial > gpus:
            raise BnnbenchError(f"--gpus-per-trial {gpus_per_trial:g} exceeds this machine's "
                                f"{gpus:g} GPU(s)")
        if cpus_per_trial > cpus:
            raise BnnbenchError(f"--cpus-per-trial {cpus_per_trial:g} exceeds this machine's "
                                f"{cpus:g} CPUs")
    return float(cpus_per_trial), float(gpus_per_trial)


def describe() -> str:
    import ray

    total = ray.cluster_resources()
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    return (f"{nodes} node{'s' if nodes != 1 else ''}, {total.get('CPU', 0):g} CPUs, "
            f"{total.get('GPU', 0):g} GPUs")


# --- shared storage ------------------------------------------------------------------------
def mark_store(store: Path) -> str:
    """Write a fresh random marker into the run store; trials check it (`check_store`)."""
    token = secrets.token_hex(8)
    (Path(store) / STORE_MARKER).write_text(token)
    return token


def check_store(store: Path, token: str) -> None:
    """Raise unless this node sees the driver's marker in the run store."""
    try:
        seen = (Path(store) / STORE_MARKER).read_text()
    except OSError:
        seen = None
    if seen != token:
        raise BnnbenchError(f"node {socket.gethostname()} does not see the run store {store} "
                            "(the driver's marker is missing there): --out must be on storage "
                            "every node sees (NFS, a shared disk)")
