"""Trials' scratch folders: the sweep removes those whose owning process is gone or whose pid now
belongs to another process, and nothing else; owners are real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from privar.search.scratch import (
    Owner,
    folder_name,
    make_folder,
    owner_alive,
    parse_name,
    process_start,
    scratch_root,
    sweep,
    sweep_every_node,
)
from ray_nodes import head_and_private_worker, ray_env


def _folder(root: Path, trial: str, pid: int, start: int) -> Path:
    """A folder as a trial owned by ``pid`` (started at ``start``) makes it, with a file in it."""
    root.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=folder_name(trial, pid, start), dir=root))
    (folder / "checkpoint.pt").write_bytes(b"x")
    return folder


@pytest.fixture
def child() -> Iterator[subprocess.Popen]:
    """A live child process of this test, SIGKILLed at the end if it still runs."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_name_records_its_owner() -> None:
    name = folder_name("ab12_00003", 4321, 987654) + "k3_x9q2z"  # mkdtemp's suffix: no "-"
    assert parse_name(name) == Owner("ab12_00003", 4321, 987654)
    for other in ("ab12", "ab12-4321-987654", "privar-ab12-x-1-abc", ".ab12-1-2-x-", "a-1-2-"):
        assert parse_name(other) is None, other


def test_a_folder_of_an_exited_process_is_swept(child: subprocess.Popen, tmp_path: Path) -> None:
    start = process_start(child.pid)
    assert start is not None
    folder = _folder(tmp_path, "dead1", child.pid, start)
    assert owner_alive(parse_name(folder.name))
    assert sweep(tmp_path) == []
    child.kill()
    child.wait()
    assert not owner_alive(parse_name(folder.name))
    assert sweep(tmp_path) == [folder]
    assert not folder.exists()


def test_a_folder_of_a_killed_unreaped_process_is_swept(child: subprocess.Popen,
                                                        tmp_path: Path) -> None:  # fmt: skip
    """SIGKILLed but not yet waited for: a zombie, still in /proc, runs nothing."""
    folder = _folder(tmp_path, "zombie", child.pid, process_start(child.pid))
    os.kill(child.pid, signal.SIGKILL)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, left unreaped
    assert Path(f"/proc/{child.pid}").exists()
    assert sweep(tmp_path) == [folder]


def test_a_live_owners_folder_is_kept(tmp_path: Path) -> None:
    pid = os.getpid()
    folder = _folder(tmp_path, "live1", pid, process_start(pid))
    assert sweep(tmp_path) == []
    assert (folder / "checkpoint.pt").exists()


def test_a_reused_pid_does_not_keep_a_folder(tmp_path: Path) -> None:
    """The pid is alive but started at another time: another process has it now."""
    pid = os.getpid()
    folder = _folder(tmp_path, "reused", pid, process_start(pid) + 1)
    assert sweep(tmp_path) == [folder]


def test_what_is_not_a_trial_folder_is_never_touched(tmp_path: Path) -> None:
    dead = 2**22 + 1  # above the largest pid Linux gives: never a process
    assert process_start(dead) is None
    file = tmp_path / folder_name("afile", dead, 5)
    file.write_text("mine")
    other = tmp_path / "notes"
    other.mkdir()
    target = _folder(tmp_path / "elsewhere", "linked", dead, 5)
    link = tmp_path / f"{folder_name('linked', dead, 5)}abc"
    link.symlink_to(target)
    swept = _folder(tmp_path, "gone", dead, 5)
    assert sweep(tmp_path) == [swept]
    assert file.read_text() == "mine" and other.is_dir() and link.is_symlink() and target.is_dir()


def test_the_sweep_is_safe_without_a_root(tmp_path: Path) -> None:
    assert sweep(tmp_path / "missing") == []


def test_a_new_folder_is_this_processs_and_sweeps_the_dead(tmp_path: Path) -> None:
    root = tmp_path / "trials"
    stale = _folder(root, "t1", 2**22 + 1, 5)
    folder = make_folder("t2", root)
    assert folder.parent == root and not stale.exists()
    assert parse_name(folder.name) == Owner("t2", os.getpid(), process_start(os.getpid()))
    assert sweep(root) == [] and folder.is_dir()


def test_the_search_s_last_sweep_covers_this_node(ray_local, child) -> None:
    """The search's last sweep, on a (real, local) Ray of one node, sweeps the root trials use
    there: a dead owner's folder goes, a live one's stays. (Other nodes get a Ray task each:
    tests/test_faults.py, where one of them dies.)"""
    root = scratch_root()
    dead = _folder(root, "t1", 2**22 + 1, 5)  # above Linux's largest pid
    live = _folder(root, "t2", child.pid, process_start(child.pid))
    try:
        assert sweep_every_node() >= 1
        assert not dead.exists() and live.is_dir()
    finally:
        for folder in (dead, live):
            shutil.rmtree(folder, ignore_errors=True)


# A driver on the head: plants a dead owner's and a live owner's folder in the other node's root
# (by a task pinned there), runs the search's last sweep, and lists that root again.
_REMOTE_SWEEP = """
import json, os, sys, tempfile
from pathlib import Path
import ray
from privar.search.scratch import folder_name, process_start, scratch_root, sweep_every_node

ray.init(address=sys.argv[1], logging_level="ERROR")
here = ray.get_runtime_context().get_node_id()
nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
assert "node:__internal_head__" in nodes[here]["Resources"], "the driver is not on the head"
(other,) = [n for n in nodes if n != here]
live_pid = int(sys.argv[2])

@ray.remote(num_cpus=0, label_selector={"ray.io/node-id": other})
def there(plant):
    root = scratch_root()
    if plant:
        root.mkdir(exist_ok=True)
        for name in (folder_name("dead", 2**22 + 1, 5), folder_name("live", live_pid,
                                                                     process_start(live_pid))):
            tempfile.mkdtemp(prefix=name, dir=root)
    return str(root), sorted(p.name.split("-")[0] for p in root.iterdir())

root, planted = ray.get(there.remote(True))
print(json.dumps({"root": root, "planted": planted, "seen_here": Path(root).exists(),
                  "swept": sweep_every_node(), "left": ray.get(there.remote(False))[1]}))
"""


@pytest.mark.slow
def test_the_search_s_last_sweep_reaches_another_node(tmp_path: Path) -> None:
    """The other node (its own mount namespace, its temp dir on a tmpfs only it sees) is swept by
    the Ray task sent there: nothing on the head could have removed its folder."""
    private = tmp_path / "node2"
    private.mkdir()
    with head_and_private_worker(private, ray_env(TMPDIR=str(private))) as address:
        p = subprocess.run([sys.executable, "-c", _REMOTE_SWEEP, address, str(os.getpid())],
                           capture_output=True, text=True, env=ray_env(), timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["root"].startswith(str(private)) and not got["seen_here"]
    assert got["planted"] == ["dead", "live"]
    assert got["swept"] >= 1 and got["left"] == ["live"]
