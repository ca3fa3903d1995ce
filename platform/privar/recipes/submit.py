"""``privar submit`` and ``privar status``: a study as a Ray job, through Ray's Jobs API.

Top to bottom: check the dashboard address (an ``http(s)://`` URL), check the study file here
exactly as ``privar run`` does (a bad study fails before anything is contacted), connect to the
dashboard (fails in seconds, one line), submit ``privar run STUDY --address auto ...`` with a
working directory that holds only the study file, and optionally follow the job's logs to its
end. ``privar status`` lists the cluster's privar jobs with how far each got, read off the
progress lines at the end of each job's logs.

The study file travels; nothing else does: the cluster's nodes have privar installed, and the
study's relative paths (``data.root``, ``out_dir``) resolve in the job's working directory on
the cluster. The job's MLflow store should be a server every node reaches (``--tracking-uri``).

Token authentication: Ray sends the cluster's token (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``
or ``~/.ray/auth_token``) as a bearer header only in token mode, which ``privar.cli`` switches
on (``use_token_if_present``) before Ray is imported. Only ``ray.job_submission`` is imported
here, lazily, so importing this module never fixes Ray's mode.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from privar.errors import UserError

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

STUDY_KEY = "privar.study"  # job metadata: the study's name; privar status lists these jobs
FILE_KEY = "privar.file"  # job metadata: the study file's name
REQUEST_TIMEOUT_S = 15.0  # per socket operation of every dashboard request


def _say(msg: str) -> None:
    print(msg, flush=True)


def _warn(msg: str) -> None:
    print(f"privar: {msg}", file=sys.stderr, flush=True)


# --- the dashboard -----------------------------------------------------------------------------


def check_address(address: str) -> str:
    """``address`` without a trailing slash, if it is an ``http(s)://host[:port]`` URL (the Ray
    dashboard, ``http://HEAD:8265``); else one clear line."""
    parts = urlsplit(address)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UserError(f"--address {address!r}: expected the Ray dashboard's URL, "
                        "http://HEAD:8265")  # fmt: skip
    return address.rstrip("/")


def _use_token() -> None:
    """Token mode when a token is at hand (``privar.cli`` did this already for ``--address``);
    ``RAY_AUTH_TOKEN_PATH`` names a token file too. Must run before Ray is imported."""
    from privar.cluster import use_token_if_present

    use_token_if_present()
    if "RAY_AUTH_MODE" not in os.environ and os.environ.get("RAY_AUTH_TOKEN_PATH"):
        os.environ["RAY_AUTH_MODE"] = "token"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0].rstrip(".") if text else type(e).__name__


@contextmanager
def _dashboard(address: str) -> Iterator[None]:
    """Any failure talking to the dashboard becomes one line naming it."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:  # requests', Ray's and aiohttp's errors alike
        if type(e).__name__ == "AuthenticationError":
            raise UserError(f"the Ray dashboard at {address} refused this client: {_first_line(e)}"
                            " (the cluster's token goes in RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                            ) from None  # fmt: skip
        raise UserError(f"cannot reach the Ray dashboard at {address}: {_first_line(e)}") from None


def connect_dashboard(address: str, timeout_s: float = 5.0) -> JobSubmissionClient:
    """A Jobs API client for the dashboard at ``address``, checked: it answers, it speaks the
    Jobs API, and it accepts this client's token. Fails in seconds with one line."""
    address = check_address(address)
    parts = urlsplit(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:  # requests would wait minutes on a host that drops packets
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as e:
        raise UserError(f"cannot reach the Ray dashboard at {address}: "
                        f"{e.strerror or e}") from None  # fmt: skip
    # Ray's client sets no timeout on its requests: bound every socket operation instead.
    socket.setdefaulttimeout(REQUEST_TIMEOUT_S)
    _use_token()
    with _dashboard(address):
        from ray.job_submission import JobSubmissionClient

        return JobSubmissionClient(address)


# --- privar submit -----------------------------------------------------------------------------


def run_args(study_file: str, tracking_uri: str | None = None, sets: Sequence[str] = (),
             storage: str | None = None) -> list[str]:  # fmt: skip
    """The ``privar`` arguments the job runs: ``run STUDY --address auto ...``."""
    args = ["run", study_file, "--address", "auto"]
    if tracking_uri:
        args += ["--tracking-uri", tracking_uri]
    for s in sets:
        args += ["--set", s]
    if storage:
        args += ["--storage", storage]
    return args


def submit_study(path: str, address: str, tracking_uri: str | None = None,
                 sets: Sequence[str] = (), overrides: dict | None = None,
                 storage: str | None = None, follow: bool = False,
                 say: Callable[[str], None] = _say) -> int:  # fmt: skip
    """``privar submit``: run the study at ``path`` on the cluster whose dashboard is at
    ``address``, as a Ray job. ``sets`` are the ``--set key=value`` flags as typed (forwarded to
    the job), ``overrides`` the same parsed (checked here first). Prints the job id; with
    ``follow``, streams the job's logs and returns 0 when it succeeded, 1 when it failed or was
    stopped, 130 on Ctrl-C (the job goes on)."""
    from privar.recipes.common import load_checked

    address = check_address(address)
    study = load_checked(path, overrides)  # a bad study or --set: one line, nothing contacted
    client = connect_dashboard(address)
    uri = tracking_uri or study.tracking.uri
    if not (uri or "").startswith(("http://", "https://")):
        _warn(f"MLflow store {uri or 'sqlite:///mlflow.db'} is local to the job on the cluster; "
              "--tracking-uri http://HOST:5000 makes it a server every node reaches")  # fmt: skip
    name = Path(path).name
    entrypoint = shlex.join(["privar", *run_args(name, tracking_uri, sets, storage)])
    with tempfile.TemporaryDirectory(prefix="privar-submit-") as folder:
        shutil.copyfile(path, Path(folder) / name)  # the job's working dir: the study file only
        with _dashboard(address):
            job_id = client.submit_job(
                entrypoint=entrypoint,
                runtime_env={"working_dir": folder, "env_vars": STOP_AS_CTRL_C},
                metadata={STUDY_KEY: study.name, FILE_KEY: name},
            )
    say(f"submitted {job_id}: study {study.name} ({entrypoint}) to {address}")
    if not follow:
        say(f"  follow it: ray job logs -f {job_id} --address {address}; "
            f"all privar jobs: privar status --address {address}")  # fmt: skip
        return 0
    return follow_job(client, job_id, address)


def follow_job(client: JobSubmissionClient, job_id: str, address: str) -> int:
    """Stream the job's logs to stdout until it ends: 0 when it succeeded, 1 when it failed or
    was stopped. Ctrl-C stops following (not the job), says how to stop the job, returns 130."""
    try:
        with _dashboard(address):
            try:
                asyncio.run(_print_logs(client, job_id))
            except RuntimeError as e:  # the log stream closed early: the status still tells
                _warn(f"log stream of {job_id} ended early: {_first_line(e)}")
            status = _wait_terminal(client, job_id)
            message = client.get_job_info(job_id).message
    except KeyboardInterrupt:
        _warn(f"stopped following {job_id}; the job goes on. Stop it with: "
              f"ray job stop {job_id} --address {address}")  # fmt: skip
        return 130
    _warn(f"job {job_id} {status}" + (f": {message}" if message and status != "SUCCEEDED"
                                      else ""))  # fmt: skip
    return 0 if status == "SUCCEEDED" else 1


async def _print_logs(client: JobSubmissionClient, job_id: str) -> None:
    async for chunk in client.tail_job_logs(job_id):
        sys.stdout.write(chunk)
        sys.stdout.flush()


def _wait_terminal(client: JobSubmissionClient, job_id: str, poll_s: float = 1.0) -> str:
    """The job's final status (``SUCCEEDED``, ``FAILED``, ``STOPPED``): the log stream ends a
    moment before the job manager records it."""
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            return str(status.value)
        time.sleep(poll_s)


# --- privar status -----------------------------------------------------------------------------


def status(address: str, say: Callable[[str], None] = _say) -> int:
    """``privar status``: the cluster's privar jobs, oldest first, one line each: job id, study,
    status, start time, and how far it got."""
    address = check_address(address)
    client = connect_dashboard(address)
    with _dashboard(address):
        jobs = [j for j in client.list_jobs()
                if j.submission_id and STUDY_KEY in (j.metadata or {})]  # fmt: skip
        jobs.sort(key=lambda j: j.start_time or 0)
        rows = [(j.submission_id, j.metadata[STUDY_KEY], str(j.status.value),
                 _when(j.start_time), progress(client.get_job_logs(j.submission_id)))
                for j in jobs]  # fmt: skip
    if not rows:
        say(f"no privar jobs on the cluster at {address}")
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        say("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    return 0


def _when(start_ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start_ms / 1000)) if start_ms \
        else "-"  # fmt: skip


# `ray job stop` sends SIGTERM and kills 3 s later; the driver would die a FAILED study. As
# SIGINT, with time to act on it, it stops as Ctrl-C stops `privar run`: Tune saves its state,
# the study's runs end KILLED, and the log says how to resume (Ray's job supervisor reads these
# two variables from the job's environment).
STOP_AS_CTRL_C = {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": "60"}
_STUDY = re.compile(r"^study \S+: .*?(\d+) trials")
_EPOCH = re.compile(r"^trial (\S+) epoch (\d+)/(\d+)")
_TRIAL_END = re.compile(r"^trial (\S+) (finished|failed)")
_SEARCH_DONE = re.compile(r"^search done: (\d+) trials")
_FARM_JOBS = re.compile(r"^farm: (\d+) jobs for")
_ERROR = re.compile(r"^(privar: (error: |every trial failed)|interrupted: )")


def progress(logs: str, width: int = 100) -> str:
    """How far a ``privar run`` got, from its log: ``done in 85 s``, ``front``, ``farm 3/12
    jobs``, ``search done: 2 trials``, ``search 1/2 trials done; last: trial X epoch 2/3``,
    ``data ready``, ``preparing data``, ``launched``, the error line of a failed run, or else
    its last line (``privar: command not found``)."""
    total = farm_total = farm_done = 0
    ended: set[str] = set()
    stage, last_epoch, error, last = "", "", "", ""
    for raw in logs.splitlines():
        line = raw.strip()
        if not line:
            continue
        last = line
        if line.startswith("Running entrypoint for job"):  # Ray's line, before the driver's
            stage = "launched"
        elif m := _STUDY.match(line):
            total, stage = int(m.group(1)), "preparing data"
        elif line.startswith("data: "):
            stage = "data ready"
        elif m := _EPOCH.match(line):
            stage, last_epoch = "search", f"trial {m.group(1)} epoch {m.group(2)}/{m.group(3)}"
        elif m := _TRIAL_END.match(line):
            ended.add(m.group(1))
        elif m := _SEARCH_DONE.match(line):
            stage = f"search done: {m.group(1)} trials"
        elif m := _FARM_JOBS.match(line):
            stage, farm_total, farm_done = "farm", int(m.group(1)), 0
        elif line.startswith("farm: ") and not line.startswith("farm: judge"):
            farm_done += 1
        elif line.startswith("farm done in"):
            stage = "farm done"
        elif line.startswith("Pareto front of"):
            stage = "front"
        elif line.startswith("done in"):
            stage = line.split(";")[0]
        elif _ERROR.match(line):
            error = line
    if error:
        shown = error
    elif stage == "search":
        shown = f"search {len(ended)}/{total or '?'} trials done; last: {last_epoch}"
    elif stage == "farm":
        shown = f"farm {farm_done}/{farm_total} jobs"
    else:
        shown = stage or last or "-"
    return shown if len(shown) <= width else shown[: width - 3] + "..."
