"""Connecting to Ray (a local Ray started by privar, or an existing cluster at an address) and
reading what the cluster has and what its autoscaler can add (:func:`capacity`). How loud Ray is
on the console is :mod:`privar.console`'s to say."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from privar.console import console_verbose, quiet_ray_data, ray_logging_level
from privar.errors import UserError
from privar.resources import Capacity, NodeType, addable, describe

# Where `ray up` leaves the autoscaler's config on the head node (and the autoscaler reads it).
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")


def connect(address: str | None = None, num_cpus: int | None = None) -> dict[str, float]:
    """Start a local Ray on this machine's cores (``address=None``) or join the cluster at
    ``address`` (``auto``, ``ray://host:10001`` or ``host:6379``). Returns the cluster's resources.

    Ray 2.60 uses token authentication: a local Ray makes its own token; joining a cluster needs
    the cluster's token in ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``, as Ray documents.
    """
    if address:
        _check_reachable(address)
        use_token_if_present()  # before Ray is imported: it reads the mode once
    import ray

    if not ray.is_initialized():
        quiet = {"logging_level": ray_logging_level(), "log_to_driver": console_verbose()}
        if address:
            said: list[str] = []
            try:
                with _stderr_held(said):
                    ray.init(address=address, **quiet)
            except Exception as e:  # ConnectionError, RuntimeError, auth errors: all one line
                raise UserError(_join_error(address, e, said[0])) from None
            if console_verbose():
                sys.stderr.write(said[0])
        else:
            # "local", not None: None would join any cluster a `ray start` left on this machine.
            ray.init(
                address="local",
                num_cpus=num_cpus or os.cpu_count(),
                include_dashboard=False,
                **quiet,
            )
    if not console_verbose():
        quiet_ray_data()
    return dict(ray.cluster_resources())


@contextlib.contextmanager
def _stderr_held(into: list[str]) -> Iterator[None]:
    """Hold what is written to file descriptor 2 in the block (Ray's C++ core writes there,
    past Python's loggers: a driver with the wrong token gets a warning a second for 20 s), and
    append it to ``into`` as text."""
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            into.append(held.read().decode(errors="replace"))


def _join_error(address: str, error: Exception, said: str) -> str:
    """One line on why joining the cluster at ``address`` failed, from ``ray.init``'s
    ``error`` and what Ray's core wrote to stderr meanwhile (``said``): a refused token is
    named as such, since the error itself only says the cluster could not be reached."""
    if "InvalidAuthToken" in said:
        return (
            f"the Ray cluster at {address} refused this driver's token (RAY_AUTH_TOKEN, else "
            "~/.ray/auth_token): use the cluster's own, as README's 'Run on a cluster' shows"
        )
    msg = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"cannot reach the Ray cluster at {address}: {msg}"


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def use_token_if_present() -> None:
    """A driver joining a cluster at an explicit address sends its token only in token mode,
    which Ray never switches on by itself there: switch it on when there is a token to send.
    Ray reads the mode once, when imported, so this must run before ``import ray``."""
    token_file = Path.home() / ".ray" / "auth_token"
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or
                                              token_file.exists()):  # fmt: skip
        os.environ["RAY_AUTH_MODE"] = "token"


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, not minutes: ``ray.init`` retries an unreachable head for about two
    minutes before it gives up."""
    if address == "auto":
        return  # Ray finds the local cluster from its own files and fails fast when none runs
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"Ray address {address!r}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise UserError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def capacity() -> Capacity:
    """The connected cluster's alive nodes (total resources) and the worker types its autoscaler
    can add. The autoscaler's node types come from the cluster config an autoscaler reports to
    Ray (KubeRay, autoscaler v2), else from ``~/ray_bootstrap_config.yaml`` where ``ray up``
    puts it on the head: the driver of a submitted study runs there."""
    import ray

    nodes = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    workers = [n for n in nodes if "node:__internal_head__" not in n]
    types = _reported_node_types() or _bootstrap_node_types(BOOTSTRAP_CONFIG.expanduser())
    # Which workers of a type are already up: Ray's node records do not name their type, so
    # count the workers whose CPU and GPU match it.
    counted = [NodeType(t.name, t.resources, t.max_workers, sum(
        1 for w in workers if t.resources is not None and all(
            w.get(k, 0.0) == t.resources.get(k, 0.0) for k in ("CPU", "GPU"))))
        for t in types]  # fmt: skip
    return Capacity(tuple(nodes), tuple(counted))


def unplaced_bundles(pg: Any) -> set[int]:
    """The bundles of placement group ``pg`` that sit on no alive node: their node left, and
    the cluster has not placed them again (it cannot while the rest of the group holds what is
    left). A task pinned to one of them waits until the bundle is placed again."""
    import ray
    from ray.util import placement_group_table

    alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
    table = placement_group_table(pg)
    return {i for i, node in table["bundles_to_node_id"].items() if node not in alive}


def _reported_node_types() -> list[NodeType]:
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # a private API: absent or changed, fall back to the file
        return []
    if config is None:
        return []
    return [NodeType(g.name, dict(g.resources), g.max_count if g.max_count >= 0 else 10**6)
            for g in config.node_group_configs]  # fmt: skip


def _bootstrap_node_types(path: Path) -> list[NodeType]:
    """Worker types of an autoscaler config file (``available_node_types`` less the head's),
    capped by the config's global ``max_workers``."""
    try:
        config: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    head = config.get("head_node_type")
    cap = int(config.get("max_workers", 10**6))
    out = []
    for name, t in (config.get("available_node_types") or {}).items():
        if name == head or not isinstance(t, dict):
            continue
        resources = t.get("resources")
        out.append(NodeType(name, dict(resources) if resources else None,
                            min(int(t.get("max_workers", cap)), cap)))  # fmt: skip
    return out


def waiting_for(cap: Capacity) -> str:
    """What a waiting placement group waits for, in words: the resources free now, and the
    workers the autoscaler can still add."""
    import ray

    free = {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}
    text = f"free now {describe(free)}"
    if cap.can_grow:
        return text + f"; the autoscaler can add {addable(cap)}"
    return text + "; waiting for running work to finish (no autoscaler can add nodes)"
