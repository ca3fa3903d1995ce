"""cluster.yaml and cluster-local.yaml, checked offline the way `ray up` checks them, and the
parts of scripts/cluster-check that keep other Rays on the machine safe.

`ray up` (``ray.autoscaler._private.commands._bootstrap_config``) runs ``prepare_config`` (the
provider's defaults, merged setup commands, per-type worker limits), then asks the provider to
fill in node resources (for AWS: boto3 and the EC2 API), then ``validate_config`` (Ray's JSON
schema and limits). The tests run the first and the last step: every node type here states its
resources, so the provider's step would add nothing, and no cloud SDK is imported or called.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parent.parent
CLOUD = ROOT / "cluster.yaml"
LOCAL = ROOT / "cluster-local.yaml"
CHECK = ROOT / "scripts" / "cluster-check"

# Plausible values for every placeholder the configs use outside comments.
PLAUSIBLE = {
    "YOUR_REGION": "us-west-2",
    "YOUR_GPU_AMI": "ami-0123456789abcdef0",
    "YOUR_BUCKET": "privar-lab-artifacts",
    "YOUR_HEAD_IP": "10.0.0.10",
    "YOUR_WORKER_IP_1": "10.0.0.11",
    "YOUR_WORKER_IP_2": "10.0.0.12",
    "YOUR_USER": "lab",
    "YOUR_KEY": "id_ed25519",
}
COMMAND_LISTS = ("initialization_commands", "setup_commands", "head_setup_commands",
                 "worker_setup_commands", "head_start_ray_commands",
                 "worker_start_ray_commands")  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    """The config with its placeholders filled in; fails on a placeholder nobody knows."""
    text = path.read_text()
    for placeholder, value in PLAUSIBLE.items():
        text = text.replace(placeholder, value)
    config = yaml.safe_load(text)
    left = set(re.findall(r"YOUR_\w+", yaml.safe_dump(config)))
    assert not left, f"{path.name}: placeholders without a plausible value here: {left}"
    return config


def prepared(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` has before it contacts a provider, validated as it validates it."""
    out = prepare_config(config)
    validate_config(out)
    return out


def commands(config: dict[str, Any]) -> list[str]:
    return [c for key in COMMAND_LISTS for c in config.get(key) or []]


def ray_starts(config: dict[str, Any]) -> list[str]:
    starts = [c for c in commands(config) if re.search(r"\bray start\b", c)]
    assert starts, "no `ray start` anywhere"
    return starts


def mlflow_server(config: dict[str, Any]) -> str:
    found = [c for c in config["head_start_ray_commands"] if "mlflow server" in c]
    assert len(found) == 1, "the head starts exactly one MLflow server"
    return found[0]


def flag(command: str, name: str) -> str | None:
    m = re.search(rf"{name}[ =](\"[^\"]*\"|'[^']*'|\S+)", command)
    return m.group(1).strip("'\"") if m else None


def load_cluster_check() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("cluster_check", str(CHECK))
    spec = importlib.util.spec_from_loader("cluster_check", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cluster_check"] = module  # dataclasses look their module up while being made
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cloud() -> dict[str, Any]:
    return load(CLOUD)


@pytest.fixture(scope="module")
def cc() -> ModuleType:
    return load_cluster_check()


@pytest.fixture(params=[CLOUD, LOCAL], ids=["cluster.yaml", "cluster-local.yaml"])
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


# --- both configs -------------------------------------------------------------------------------


def test_configs_pass_rays_own_preparation_and_schema(config: dict[str, Any]) -> None:
    out = prepared(config)
    assert out["head_node_type"] in out["available_node_types"]
    # merge_setup_commands: the common setup (scripts/bootstrap) runs on the head and workers.
    assert any("scripts/bootstrap" in c for c in out["head_setup_commands"])
    assert any("scripts/bootstrap" in c for c in out["worker_setup_commands"])


def test_token_authentication_stays_on(config: dict[str, Any]) -> None:
    dumped = yaml.safe_dump(config)
    assert "RAY_AUTH_MODE=disabled" not in dumped and "AUTH_MODE: disabled" not in dumped
    for start in ray_starts(config):
        assert "RAY_AUTH_MODE=token" in start, start
    # `ray start --head` only turns token mode on when a token exists: the head makes one first,
    # and every worker gets it before its own `ray start`.
    head = config["head_start_ray_commands"]
    generate = next(i for i, c in enumerate(head) if "get-auth-token --generate" in c)
    start = next(i for i, c in enumerate(head) if "ray start --head" in c)
    assert generate < start
    assert "~/.ray/auth_token" in config["cluster_synced_files"]


def test_head_starts_ray_and_workers_join_it(config: dict[str, Any]) -> None:
    head = " ".join(config["head_start_ray_commands"])
    assert "ray start --head --port=6379" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    workers = " ".join(config["worker_start_ray_commands"])
    assert "ray start --address=$RAY_HEAD_IP:6379" in workers
    # Jobs from `privar submit` run `privar run ...` in processes Ray starts: privar's .venv must
    # be on the PATH `ray start` sees, on every node.
    for start in ray_starts(config):
        assert 'export PATH="$HOME/privar/.venv/bin:$PATH"' in start, start


def test_mlflow_serves_artifacts_on_the_heads_private_address(config: dict[str, Any]) -> None:
    server = mlflow_server(config)
    host = flag(server, "--host")
    assert host, "MLflow needs --host: its default, 127.0.0.1, is out of the workers' reach"
    assert host not in ("0.0.0.0", "::", "[::]", "*"), "MLflow bound to every interface"
    assert "hostname -I" in host, "MLflow binds the head's own (private) address"
    assert "--serve-artifacts" in server
    destination = flag(server, "--artifacts-destination")
    assert destination
    assert (flag(server, "--backend-store-uri") or "").startswith("sqlite:///")
    # In the background, past the end of Ray's SSH session, with a log and a recorded group.
    assert "setsid nohup" in server and re.search(r"> \S+\.log 2>&1 < /dev/null &$", server)
    assert "server.pgid" in server


def test_setup_installs_privar_from_the_mounted_checkout(config: dict[str, Any]) -> None:
    assert config["file_mounts"]["~/privar"] == "."
    assert "cd ~/privar && scripts/bootstrap" in config["setup_commands"]
    # The checkout travels without what .gitignore lists: the local .venv, MLflow store, data.
    assert ".gitignore" in config["rsync_filter"]


# --- cluster.yaml -------------------------------------------------------------------------------


def test_cloud_config_is_aws_with_artifacts_in_object_storage(cloud: dict[str, Any]) -> None:
    assert cloud["provider"]["type"] == "aws"
    assert (flag(mlflow_server(cloud), "--artifacts-destination") or "").startswith("s3://")
    # The head's autoscaler and MLflow need boto3; privar's pins do not get it.
    assert any("boto3" in c for c in cloud["head_setup_commands"])
    assert "boto3" not in (ROOT / "pyproject.toml").read_text()


def test_cloud_gpu_node_types_with_one_and_eight_gpus(cloud: dict[str, Any]) -> None:
    out = prepared(cloud)
    types = out["available_node_types"]
    head = types[out["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    workers = {n: t for n, t in types.items() if n != out["head_node_type"]}
    for name, t in workers.items():  # explicit: privar reasons about nodes not yet started
        assert "CPU" in t["resources"] and t["max_workers"] >= 1, name
    by_gpus = {t["resources"].get("GPU", 0): t for t in workers.values()}
    assert 1 in by_gpus and 8 in by_gpus
    assert by_gpus[8]["min_workers"] == 0, "an 8-GPU node is never kept warm"
    assert sum(t["min_workers"] for t in workers.values()) <= out["max_workers"]


# --- scripts/cluster-check ----------------------------------------------------------------------


def render(cc: ModuleType, state: Path) -> dict[str, Any]:
    ports = cc.Ports(gcs=40001, dashboard=40002, mlflow=40003, client=40004, agent=40005)
    source = load(LOCAL)
    return cc.render_local_config(source, state, ports, "privar-check-test", "someone",
                                  Path("/home/someone/.ssh/privar-cluster-check"))  # fmt: skip


def test_cluster_check_renders_a_loopback_config_without_ray_stop(
    cc: ModuleType, tmp_path: Path
) -> None:
    config = render(cc, tmp_path)
    out = prepared(config)
    assert out["provider"] == {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}
    assert out["auth"]["ssh_user"] == "someone"
    # `ray stop` stops every Ray on the machine: never on 127.0.0.1, where other Rays run.
    assert not any("ray stop" in c for c in commands(out))
    start = next(c for c in config["head_start_ray_commands"] if "ray start --head" in c)
    assert "--port=40001" in start and "--dashboard-port=40002" in start
    assert f"--temp-dir={tmp_path / 'ray'}" in start
    assert "RAY_AUTH_MODE=token" in start and f"RAY_AUTH_TOKEN_PATH={tmp_path}" in start
    for c in config["head_start_ray_commands"]:  # teardown finds them by this marker
        assert f"{cc.MARKER_VAR}={tmp_path}" in c
    server = mlflow_server(config)
    assert flag(server, "--host") == "127.0.0.1" and "--serve-artifacts" in server
    assert any("scripts/bootstrap" in c for c in config["setup_commands"])


def test_cluster_check_gate_turns_ray_stop_into_the_runs_teardown(
    cc: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "gate").write_text(cc.gate_script(tmp_path))
    (tmp_path / "teardown").write_text("#!/usr/bin/env bash\necho this-runs-teardown\n")
    for name in ("gate", "teardown"):
        (tmp_path / name).chmod(0o700)

    def through_gate(command: str) -> str:
        env = {**os.environ, "SSH_ORIGINAL_COMMAND": command}
        done = subprocess.run([str(tmp_path / "gate")], env=env, capture_output=True, text=True,
                              timeout=30)  # fmt: skip
        return done.stdout.strip()

    # Exactly what `ray down` sends to the head (Ray's SSH command runner, login shell).
    inner = "source ~/.bashrc; export OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore && (ray stop)"
    assert through_gate(f"bash --login -c -i {shlex.quote(inner)}") == "this-runs-teardown"
    assert through_gate("echo $((6 * 7))") == "42"


def test_cluster_check_teardown_stops_only_what_the_run_started(
    cc: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "teardown").write_text(cc.teardown_script(tmp_path))
    (tmp_path / "teardown").chmod(0o700)
    marked_env = {**os.environ, cc.MARKER_VAR: str(tmp_path)}
    ours = subprocess.Popen(["sleep", "300"], env=marked_env, start_new_session=True)
    stray = subprocess.Popen(["sleep", "301"], env=marked_env)  # marked, in no recorded group
    other = subprocess.Popen(["sleep", "302"], start_new_session=True)  # not this run's
    (tmp_path / "ray.pgid").write_text(str(ours.pid))
    try:
        done = subprocess.run([str(tmp_path / "teardown")], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert ours.wait(timeout=10) == -signal.SIGTERM
        assert stray.wait(timeout=10) == -signal.SIGTERM
        assert other.poll() is None, "a process of someone else was stopped"
    finally:
        for p in (ours, stray, other):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_cluster_check_without_an_ssh_server_says_how_to_get_one(
    cc: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cc, "ssh_server_listening", lambda *a, **k: False)
    monkeypatch.setattr(cc.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    args = cc.parse_args(["--study", str(ROOT / "studies" / "smoke.yaml")])
    line = cc.preflight(args)
    assert line == cc.SSH_HELP and "\n" not in line
    assert "openssh-server" in line


def test_cluster_check_takes_its_key_out_of_authorized_keys_again(
    cc: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    key = tmp_path / "key"
    key.with_suffix(".pub").write_text("ssh-ed25519 AAAAC3Nza-test privar-cluster-check\n")
    keys = home / ".ssh" / "authorized_keys"
    state = tmp_path / "pcc-test"
    ports = cc.Ports(gcs=1, dashboard=2, mlflow=3, client=4, agent=5)

    for before in ("ssh-rsa AAAAB3-someone-else someone@lab\n", None):
        if before is None:
            keys.unlink()
        else:
            keys.write_text(before)
        run = cc.Run(state=state, ports=ports, cluster_name="privar-check-test")
        cc.authorize(run, key)
        line = keys.read_text().splitlines()[-1]
        assert line.startswith(f'command="{state / "gate"}",no-port-forwarding')
        cc.deauthorize(run)
        if before is None:
            assert not keys.exists()
        else:
            assert keys.read_text() == before
