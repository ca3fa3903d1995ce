"""Real Ray nodes for tests: `ray start --block` processes on loopback, each in its own process
group and stopped by it (never `ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent


# The head's GCS marks a node dead after this many failed health checks this far apart: 5 s
# for a SIGKILLed node, not Ray's 15 s (every 3 s, 5 times), which the fault tests waited for
# at each kill. A live node must miss five checks of 3 s each in a row to be taken for dead.
HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "3000",
                 "RAY_health_check_failure_threshold": "5"}  # fmt: skip


def ray_env(**extra: str) -> dict[str, str]:
    """A node joining a cluster sends the token (~/.ray/auth_token) only in token mode."""
    return {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", **HEALTH_CHECKS, **extra}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def head_args(port: int, num_cpus: int) -> list[str]:
    """`ray start` arguments for a head on 127.0.0.1:``port`` with a temp dir of its own and a
    free port for the dashboard Ray starts even without ``--include-dashboard``. Left at 8265,
    which the tests' local Ray (``ray.init``) took first, that dashboard fails to bind, and the
    head's metrics agent and GCS then spin on both cores for the rest of its life: the fault
    tests ran at half speed in the suite."""
    return ["--head", f"--port={port}", "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}",
            "--include-dashboard=false", f"--dashboard-port={free_port()}",
            f"--temp-dir={short_temp_dir()}"]  # fmt: skip


def short_temp_dir() -> Path:
    # Ray's unix sockets live under the temp dir, and socket paths stop at 107 bytes.
    return Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))


def start_node(args: list[str], env: dict[str, str] | None = None,
               prefix: list[str] | None = None) -> subprocess.Popen:  # fmt: skip
    """``ray start --block ARGS`` (behind ``prefix``, e.g. ``unshare ...``) in a new process
    group."""
    return subprocess.Popen(
        [*(prefix or []), str(BIN / "ray"), "start", "--block", "--disable-usage-stats", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or ray_env(),
        start_new_session=True,
    )  # fmt: skip


def start_head(port: int) -> subprocess.Popen:
    """A one-CPU head on 127.0.0.1:``port``, without a dashboard."""
    return start_node(head_args(port, 1))


def start_private_worker(port: int, private: Path, env: dict[str, str]) -> subprocess.Popen:
    """A one-CPU worker joining the head on 127.0.0.1:``port``, in its own mount namespace with
    an empty tmpfs over ``private``: a file only this machine's other processes wrote there does
    not exist for it, as on another machine."""
    hide = f'mount -t tmpfs node-private {private} && exec "$@"'
    return start_node(
        [f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=1"],
        env, prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh"],
    )  # fmt: skip


@contextlib.contextmanager
def head_and_private_worker(private: Path,
                            worker_env: dict[str, str] | None = None) -> Iterator[str]:  # fmt: skip
    """A one-CPU head on loopback and a one-CPU worker joined to it
    (:func:`start_private_worker`, environment ``worker_env``); yields the head's address once
    both CPUs are up, and stops both, the worker first."""
    port = free_port()
    env = ray_env()
    nodes = [start_head(port)]
    try:
        wait_for_port(port)
        nodes.append(start_private_worker(port, private, worker_env or env))
        wait_for_resource(f"127.0.0.1:{port}", "CPU", 2, env)
        yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(nodes):
            stop_group(node)


def stop_group(node: subprocess.Popen, grace_s: float = 5) -> None:
    """SIGTERM the process group of ``node`` (a `ray start --block` stops its processes, a
    server its workers), then SIGKILL whatever is left of it after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(grace_s)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the leader is gone; its children may linger a moment
            time.sleep(1)
    node.wait()


def wait_for_port(port: int, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def wait_for_resource(address: str, key: str, amount: float, env: dict[str, str],
                      timeout_s: float = 90) -> None:  # fmt: skip
    """Until the cluster at ``address`` has ``amount`` of ``key`` (nodes join seconds after they
    start)."""
    probe = ("import ray, time\n"
             f"ray.init(address={address!r}, logging_level='ERROR')\n"
             f"t = time.monotonic() + {timeout_s}\n"
             f"while ray.cluster_resources().get({key!r}, 0) < {amount} and "
             "time.monotonic() < t:\n"
             "    time.sleep(0.5)\n"
             f"print(ray.cluster_resources().get({key!r}, 0))\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         timeout=timeout_s + 60)  # fmt: skip
    got = out.stdout.strip().splitlines()[-1:] or ["nothing"]
    assert got[0] == f"{float(amount)}", f"{key}: {got[0]}; {out.stderr[-2000:]}"
