"""Trials' scratch folders on a node's disk, and the sweep that removes those of dead trials.

A trial trains with its checkpoints in a folder of this node's disk and removes it when it ends
or fails; a trial whose process is SIGKILLed (the OOM killer, a reclaimed spot node's last
seconds, a fault test) runs no code, and its folder would stay forever. So every trial's folder
lives under one root per node (:func:`scratch_root`), named for its owner: the trial id, the
owning process's pid and that process's start time (:func:`folder_name`). Before a trial makes
its own folder it sweeps the root (:func:`sweep`): a folder whose owner is gone, or whose pid
now belongs to another process (a different start time: pids are reused), is removed; a live
owner's folder, of any study on the node, is never touched, nor is anything not named so. When
the search ends, every node is swept once more (:func:`sweep_every_node`), for a trial killed
after the last trial on its node began.

The start time is field 22 of ``/proc/<pid>/stat`` (clock ticks after boot). Where there is no
``/proc`` (macOS) a folder records start 0 and its owner counts as alive while its pid exists.
Owners are told apart by pid, so the root must not be shared by processes of different pid
namespaces (containers sharing one ``/tmp``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

PROC = Path("/proc")
ROOT_NAME = "privar-trials"
# <trial id>-<pid>-<start>-<mkdtemp's random suffix, which has no "-">
_NAME = re.compile(r"(?P<trial>.+)-(?P<pid>\d+)-(?P<start>\d+)-[^-]+")


class Owner(NamedTuple):
    """Whose a scratch folder is: the ``trial`` id, the owning process's ``pid`` and its
    ``start`` time (clock ticks after boot; 0 where unknown)."""

    trial: str
    pid: int
    start: int


def scratch_root() -> Path:
    """This node's root of trial scratch folders for this user: ``<temp dir>/privar-trials-<uid>``
    (``TMPDIR``, as the Ray worker inherited it). One per user: another user's root would not be
    writable, nor their trials' processes visible."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"{ROOT_NAME}-{uid}"


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (``/proc/<pid>/stat`` field 22);
    None when it does not exist, is a zombie (dead, not yet reaped) or there is no ``/proc``."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces: field 3 on
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def folder_name(trial: str, pid: int, start: int) -> str:
    """The name's prefix of trial ``trial``'s folder owned by process ``pid`` started at
    ``start``; :func:`make_folder` adds a random suffix."""
    return f"{trial}-{pid}-{start}-"


def parse_name(name: str) -> Owner | None:
    """The owner a folder's ``name`` records; None for a name not made by :func:`make_folder`."""
    found = _NAME.fullmatch(name)
    if found is None:
        return None
    return Owner(found["trial"], int(found["pid"]), int(found["start"]))


def owner_alive(owner: Owner) -> bool:
    """Whether the process that made the folder still runs: its pid exists with the same start
    time (by the pid alone where there is no ``/proc``)."""
    if not PROC.is_dir():
        try:
            os.kill(owner.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process
            return True
        return True
    return process_start(owner.pid) == owner.start


def sweep(root: Path) -> list[Path]:
    """Remove every folder under ``root`` named for an owner that is no longer alive; the
    folders removed. Files, links, and folders not named by :func:`make_folder` are left alone;
    a missing ``root`` has nothing to sweep. Safe beside other sweepers on the node: a folder
    one of them removes first is skipped."""
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        owner = parse_name(entry.name)
        if owner is None or entry.is_symlink() or not entry.is_dir() or owner_alive(owner):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def make_folder(trial: str, root: Path | None = None) -> Path:
    """A new scratch folder for trial ``trial``, owned by this process, under ``root`` (default
    :func:`scratch_root`), after sweeping the root of dead trials' folders."""
    root = root or scratch_root()
    sweep(root)
    root.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    prefix = folder_name(trial, pid, process_start(pid) or 0)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def sweep_every_node(timeout_s: float = 15.0) -> int:
    """:func:`sweep` this user's root on every alive node of the connected Ray cluster: here in
    this process for its own node, by a task pinned to each other node (no CPU: it runs beside
    busy trials); how many folders went. It is cleaning, not work: a node that left meanwhile,
    or does not answer within ``timeout_s``, keeps its folders until its next trial, and the
    search ends all the same."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    swept = _sweep_here()
    task = ray.remote(num_cpus=0, max_retries=0)(_sweep_here)
    refs = [task.options(label_selector={"ray.io/node-id": n["NodeID"]}).remote()
            for n in ray.nodes() if n.get("Alive") and n["NodeID"] != here]  # fmt: skip
    done, late = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    for ref in late:
        ray.cancel(ref)
    for ref in done:
        try:
            swept += ray.get(ref)
        except ray.exceptions.RayError:  # its node left after ray.nodes() listed it
            continue
    return swept


def _sweep_here() -> int:
    return len(sweep(scratch_root()))
