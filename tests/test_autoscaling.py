"""A study whose trials ask for GPUs on a cluster that has none yet: Ray's fake multi-node
autoscaler (the provider behind ``ray.cluster_utils.AutoscalingCluster``) adds a GPU worker
from zero, privar says what it waits for, and the study completes.

The head is started the way ``ray up`` starts one: with the autoscaler's config at
``~/ray_bootstrap_config.yaml`` (HOME is a folder of this test's), which is also where privar
reads which worker types the autoscaler can add."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import free_port
from ray_nodes import BIN, head_args, ray_env, start_node, stop_group, wait_for_port
from test_cluster_resources import STUDY


def fake_autoscaler_config(gcs_address: str) -> dict:
    """A CPU-only head and a one-GPU worker type that starts at zero nodes."""
    return {
        "cluster_name": "privar-fake", "max_workers": 1, "head_node_type": "ray.head.default",
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True,
                     "gcs_address": gcs_address},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 2}, "node_config": {}, "max_workers": 0},
            "gpu_worker": {"resources": {"CPU": 2, "GPU": 1}, "node_config": {},
                           "min_workers": 0, "max_workers": 1},
        },
        "upscaling_speed": 1.0, "idle_timeout_minutes": 5, "docker": {}, "auth": {"ssh_user": "x"},
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [], "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
    }  # fmt: skip


@pytest.mark.slow
def test_gpu_trials_make_the_autoscaler_add_a_worker(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for token in (Path.home() / ".ray").glob("auth_token"):  # the same token, in the new HOME
        (home / ".ray").mkdir()
        (home / ".ray" / "auth_token").write_bytes(token.read_bytes())
    port = free_port()
    config = home / "ray_bootstrap_config.yaml"
    config.write_text(yaml.safe_dump(fake_autoscaler_config(f"127.0.0.1:{port}")))
    env = ray_env(HOME=str(home), RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")
    head = start_node([*head_args(port, 2), "--num-gpus=0", f"--autoscaling-config={config}"],
                      env)  # fmt: skip
    try:
        wait_for_port(port)
        (tmp_path / "gpu.yaml").write_text(STUDY)
        p = subprocess.run(
            [str(BIN / "privar"), "run", "gpu.yaml", "--address", f"127.0.0.1:{port}",
             "--set", "resources.gpu=0.5", "--set", "farm.gpus_per_job=0.5"],
            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900,
        )  # fmt: skip
    finally:
        stop_group(head)  # the fake workers are processes of the head's autoscaler, in its group
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert "Ray 2 CPUs at 127.0.0.1" in p.stdout  # no GPU when the study started
    # The head alone holds no trial: privar plans with the worker the autoscaler can add, and
    # says so before the wait (the wait's own line comes only if the worker is not up within
    # privar's first look at the pending trial).
    assert "cluster: no node holds a trial yet; the autoscaler can add 1 x gpu_worker" in p.stdout
    assert p.stdout.count("epoch 1/1") == 2
    assert "Pareto front of gpu (farm-checked" in p.stdout
