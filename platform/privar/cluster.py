"""Connecting to Ray: a local Ray started by privar, or an existing cluster at an address."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from privar.errors import UserError


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
        quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
        if address:
            try:
                ray.init(address=address, **quiet)
            except Exception as e:  # ConnectionError, RuntimeError, auth errors: all one line
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise UserError(f"cannot reach the Ray cluster at {address}: {msg}") from None
        else:
            # "local", not None: None would join any cluster a `ray start` left on this machine.
            ray.init(
                address="local",
                num_cpus=num_cpus or os.cpu_count(),
                include_dashboard=False,
                **quiet,
            )
    return dict(ray.cluster_resources())


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
