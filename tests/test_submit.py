"""`privar submit` and `privar status` through Ray's Jobs API: a real head with its dashboard
and token authentication on, a real `mlflow server`, a tiny study run as a Ray job; and the
one-line errors (a bad address, a bad study) that come before anything is contacted."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import free_port, tiny_study
from privar.recipes.submit import progress, run_args
from ray_nodes import start_node, stop_group
from tune_state import saved_trials

BIN = Path(sys.executable).parent
PRIVAR = str(BIN / "privar")


def _study(folder: Path, name: str, epochs: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    # Relative paths: they resolve in the job's working directory on the cluster. A farm of one
    # adversary: what is tested here is the Jobs API, the farm is tested elsewhere.
    path.write_text(tiny_study(name, changes={
        "train.epochs": epochs, "farm.adversaries": ["baby2d"], "farm.reconstruction": None,
        "farm.baselines": []}))  # fmt: skip
    return path


def _env(**extra: str) -> dict[str, str]:
    """This machine's environment without Ray's mode and address: privar decides the mode."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    return {**env, **extra}


def privar(*args: str, cwd: Path | None = None, env: dict | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:  # fmt: skip
    return subprocess.run([PRIVAR, *args], capture_output=True, text=True, cwd=cwd,
                          env=env or _env(), timeout=timeout)  # fmt: skip


def assert_one_line_error(p: subprocess.CompletedProcess, *needles: str) -> str:
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0]
    return lines[0]


# --- fast: nothing to reach ---------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1:8265", "ray://127.0.0.1:10001", "auto",
                                     "http://", "http://host:port"])  # fmt: skip
def test_the_address_must_be_the_dashboards_url(address: str) -> None:
    assert_one_line_error(privar("status", "--address", address),
                          f"--address {address!r}: expected the Ray dashboard's URL")  # fmt: skip


def test_an_unreachable_dashboard_is_one_line_in_seconds(tmp_path: Path) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    assert_one_line_error(privar("status", "--address", address),
                          f"cannot reach the Ray dashboard at {address}: ")  # fmt: skip
    p = privar("submit", str(_study(tmp_path, "tiny")), "--address", address, cwd=tmp_path)
    assert_one_line_error(p, f"cannot reach the Ray dashboard at {address}: ")
    assert time.monotonic() - t0 < 60  # the study check imports torch; no network waits


def test_a_bad_study_fails_before_the_dashboard_is_contacted(tmp_path: Path) -> None:
    """The address is unreachable: an error about the study proves it was checked first."""
    address = f"http://127.0.0.1:{free_port()}"
    study = _study(tmp_path, "tiny")
    bad = tmp_path / "bad.yaml"
    bad.write_text(study.read_text().replace("clip_len:", "clip_lenght:"))
    assert_one_line_error(privar("submit", str(bad), "--address", address),
                          "bad.yaml: data.clip_lenght: unknown key")  # fmt: skip
    p = privar("submit", str(study), "--address", address, "--set", "adversarial.alpha=-1")
    assert_one_line_error(p, "--set: adversarial.alpha: must be >= 0")
    p = privar("submit", str(study), "--address", address, "--set", "alpha")
    assert_one_line_error(p, "--set 'alpha': expected key=value")
    assert_one_line_error(privar("submit", str(tmp_path / "nowhere.yaml"), "--address", address),
                          "nowhere.yaml", "no such study file")  # fmt: skip


def test_the_jobs_command_line() -> None:
    assert run_args("s.yaml", "http://h:5000", ["a.b=1", "c=x y"]) == [
        "run", "s.yaml", "--address", "auto", "--tracking-uri", "http://h:5000",
        "--set", "a.b=1", "--set", "c=x y"]  # fmt: skip
    assert run_args("s.yaml") == ["run", "s.yaml", "--address", "auto"]
    assert run_args("s.yaml", storage="s3://b/x")[-2:] == ["--storage", "s3://b/x"]


LOG = """\
Running entrypoint for job raysubmit_x: privar run s.yaml --address auto
study s: scheme adversarial, encoder bdq, 2 trials (random), Ray 2 CPUs at auto, MLflow http://m
  data: 24 videos, 0 quarantined, ready in 3 s
  MLflow experiment s (1), study run abc
  trial t_00000 epoch 1/3: action_acc 0.500  privacy_acc 0.300
  trial t_00001 epoch 1/3: action_acc 0.400  privacy_acc 0.200
  trial t_00000 epoch 2/3: action_acc 0.600  privacy_acc 0.300
"""
FARM = """\
  trial t_00000 epoch 3/3: action_acc 0.600  privacy_acc 0.300
  trial t_00000 finished
  trial t_00001 epoch 3/3: action_acc 0.600  privacy_acc 0.300
  trial t_00001 finished
  search done: 2 trials in 40 s
  farm: judge of reconstructions: baby2d on raw frames, privacy_acc 0.900
  farm: 10 jobs for 3 encoders (2 at a time)
  farm: t_00000 adversary baby2d: privacy_acc 0.500  privacy_acc_clip 0.500
  farm: t_00000 adversary baby2d_wide: privacy_acc 0.400  privacy_acc_clip 0.500
"""


def test_progress_reads_how_far_a_run_got() -> None:
    assert progress("") == "-"
    assert progress(LOG.splitlines()[0]) == "launched"
    assert progress("\n".join(LOG.splitlines()[:2])) == "preparing data"
    assert progress("\n".join(LOG.splitlines()[:3])) == "data ready"
    assert progress(LOG) == "search 0/2 trials done; last: trial t_00000 epoch 2/3"
    assert progress(LOG + FARM.split("  search")[0]) == (
        "search 2/2 trials done; last: trial t_00001 epoch 3/3")  # fmt: skip
    assert progress(LOG + FARM) == "farm 2/10 jobs"
    done = LOG + FARM + "  farm done in 90 s\nPareto front of s (farm-checked):\n"
    assert progress(done) == "front"
    assert progress(done + "done in 95 s; MLflow: http://m\n") == "done in 95 s"
    failed = LOG + "privar: error: cannot reach the MLflow server at http://m: refused\n"
    assert progress(failed) == "privar: error: cannot reach the MLflow server at http://m: refused"
    assert progress("bash: line 1: privar: command not found\n") == (
        "bash: line 1: privar: command not found")  # fmt: skip
    assert len(progress("x" * 500)) == 100


# --- slow: a real head with its dashboard, token authentication on ---------------------------


@pytest.fixture(scope="module")
def ray_head() -> Iterator[tuple[str, str]]:
    """(dashboard URL, token): `ray start --head --block` with the dashboard, in token mode with
    its own token (RAY_AUTH_TOKEN), privar on its PATH as on a cluster's nodes; stopped by pid."""
    token = secrets.token_hex(32)
    dash = free_port()
    # Short: Ray's unix sockets live under the temp dir, and socket paths stop at 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    head = start_node(
        ["--head", f"--port={free_port()}", "--node-ip-address=127.0.0.1",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         f"--dashboard-agent-listen-port={free_port()}", f"--ray-client-server-port={free_port()}",
         "--num-cpus=2", f"--temp-dir={temp}"], env,
    )  # fmt: skip
    address = f"http://127.0.0.1:{dash}"
    try:
        _wait_for_jobs_api(address, token, head)
        yield address, token
    finally:
        stop_group(head)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_jobs_api(address: str, token: str, head: subprocess.Popen,
                       timeout_s: float = 120) -> None:  # fmt: skip
    """The dashboard answers /api/version early; the job module a little later."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(address + "/api/jobs/",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    while True:
        try:
            urllib.request.urlopen(request, timeout=5).close()
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline or head.poll() is not None:
                raise RuntimeError(f"no Jobs API at {address} in {timeout_s} s") from None
            time.sleep(1)


@pytest.mark.slow
def test_submit_follow_and_status(ray_head: tuple[str, str], mlflow_server: str,
                                  tmp_path: Path) -> None:  # fmt: skip
    address, token = ray_head
    env = _env(RAY_AUTH_TOKEN=token)  # privar switches token mode on itself

    # Ctrl-C while following, mid-search: following stops, the job goes on, the hint stops it.
    # The job stops as Ctrl-C stops `privar run` (Tune, left to itself, would end a search cut
    # short as if it had finished, and the farm would go on): its study run KILLED, the trial
    # cut short still unfinished in Tune's state, for `privar resume`.
    other = _study(tmp_path / "other", "interrupted", epochs=30)
    storage = tmp_path / "storage"
    follower = subprocess.Popen(
        [PRIVAR, "submit", str(other), "--address", address, "--tracking-uri", mlflow_server,
         "--storage", str(storage), "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # A shell's background job starts with SIGINT ignored, and so would privar: as in a
        # terminal, Ctrl-C must reach it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    first = follower.stdout.readline()
    assert (m := re.match(r"submitted (raysubmit_\w+): study interrupted", first)), first
    stopped_id = m.group(1)
    trains = None
    for line in follower.stdout:  # the job's log, as it comes: until a trial trains
        if trains := re.search(r"trial (\w+) epoch 1/30", line):
            break
    follower.send_signal(signal.SIGINT)
    out, err = follower.communicate(timeout=60)
    assert trains and follower.returncode == 130, out[-2000:] + err[-2000:]
    cut_short = trains.group(1)
    hint = f"ray job stop {stopped_id} --address {address}"
    assert hint in err and "Traceback" not in err
    p = subprocess.run([str(BIN / "ray"), *hint.split()[1:]], capture_output=True, text=True,
                       env={**env, "RAY_AUTH_MODE": "token"}, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    client = MlflowClient(mlflow_server)
    (stopped,) = client.search_runs([client.get_experiment_by_name("interrupted").experiment_id],
                                    "tags.`privar.kind` = 'study'")  # fmt: skip
    assert stopped.info.status == "KILLED"
    status = saved_trials(storage / "interrupted" / stopped.info.run_id)
    assert status[cut_short]["status"] != "TERMINATED", status

    # The study, run as a Ray job; its logs streamed until it ends.
    study = _study(tmp_path / "remote", "remote")
    p = privar("submit", str(study), "--address", address, "--tracking-uri", mlflow_server,
               "--follow", cwd=study.parent, env=env, timeout=1500)  # fmt: skip
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-3000:]
    m = re.match(r"submitted (raysubmit_\w+): study remote \(privar run remote.yaml --address "
                 rf"auto --tracking-uri {mlflow_server}\) to {address}", p.stdout)  # fmt: skip
    assert m, p.stdout[:2000]
    job_id = m.group(1)
    assert "epoch 1/1" in p.stdout and "Pareto front of remote" in p.stdout
    assert f"job {job_id} SUCCEEDED" in p.stderr
    assert not (study.parent / "synthetic").exists()  # made on the cluster, in the job's dir

    exp = client.get_experiment_by_name("remote")
    (study_run,) = client.search_runs([exp.experiment_id], "tags.`privar.kind` = 'study'")
    assert study_run.info.status == "FINISHED"
    trials = client.search_runs([exp.experiment_id], "tags.`privar.kind` = 'trial'")
    assert len(trials) == 2 and {t.info.status for t in trials} == {"FINISHED"}
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {study_run.info.run_id}

    # privar status: both jobs, oldest first, with their study and how far they got.
    p = privar("status", "--address", address, env=env)
    assert p.returncode == 0, p.stderr
    print(p.stdout)  # shown by pytest -rA
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 2, p.stdout
    assert lines[0].startswith(stopped_id) and " interrupted " in lines[0]
    assert "interrupted: `privar resume interrupted.yaml` finishes the study" in lines[0]
    assert " STOPPED " in lines[0] and "Running entrypoint" not in lines[0]
    assert lines[1].startswith(job_id) and " remote " in lines[1] and " SUCCEEDED " in lines[1]
    assert re.search(r"done in \d+ s$", lines[1]), lines[1]

    # A wrong token: refused, one line.
    p = privar("status", "--address", address, env=_env(RAY_AUTH_TOKEN="0" * 64))
    assert_one_line_error(p, f"the Ray dashboard at {address} refused this client")
