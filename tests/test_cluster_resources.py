"""Resources that add up, on a real Ray head with one logical GPU (it schedules like a real one
and needs no CUDA): fractional-GPU trials and farm jobs finish; a request no node can hold fails
in seconds with one line naming the study key."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port, tiny_study
from ray_nodes import BIN, head_args, ray_env, start_node, stop_group, wait_for_port

PRIVAR = str(BIN / "privar")

# Two trials and their farm; the search may run 4 at once, if the cluster holds them.
STUDY = tiny_study("gpu", changes={"search.concurrency": 4, "farm.reconstruction": None,
                                   "farm.baselines": []})  # fmt: skip


@pytest.fixture(scope="module")
def one_gpu_head() -> Iterator[str]:
    """`ray start --head` with 4 CPUs and 1 logical GPU, stopped by its process group."""
    port = free_port()
    node = start_node([*head_args(port, 4), "--num-gpus=1"])
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(node)


def _privar(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PRIVAR, *args], capture_output=True, text=True, cwd=cwd,
                          env=ray_env(), timeout=timeout)  # fmt: skip


@pytest.mark.slow
def test_fractional_gpu_trials_and_farm_jobs_finish(one_gpu_head: str, tmp_path: Path) -> None:
    (tmp_path / "gpu.yaml").write_text(STUDY)
    p = _privar("run", "gpu.yaml", "--address", one_gpu_head, "--set", "resources.gpu=0.5",
                "--set", "farm.gpus_per_job=0.5", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    # Concurrency comes from the GPU, not the CPUs: 1 GPU / 0.5 = 2 trials, 2 farm jobs at once.
    assert "search: 2 trials at a time (search.concurrency 4" in p.stdout
    assert "(2 at a time)" in p.stdout
    assert p.stdout.count("epoch 1/1") == 2
    assert "Pareto front of gpu (farm-checked" in p.stdout


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        (
            "resources.gpu=2",
            "resources.gpu: each trial asks {CPU: 1, GPU: 2}, but the largest "
            "node has GPU 1 (and no autoscaler can add one)",
        ),
        ("farm.gpus_per_job=1.5", "farm.gpus_per_job: each farm job asks {CPU: 1, GPU: 1.5}"),
        (
            "resources.memory_gb=100000",
            "resources.memory_gb: each trial asks {CPU: 1, memory: 100000 GiB}",
        ),
    ],
)
def test_a_request_no_node_can_hold_fails_in_seconds(one_gpu_head: str, tmp_path: Path,
                                                     setting: str, line: str) -> None:  # fmt: skip
    (tmp_path / "gpu.yaml").write_text(STUDY)
    t0 = time.monotonic()
    p = _privar("run", "gpu.yaml", "--address", one_gpu_head, "--set", setting, cwd=tmp_path,
                timeout=120)  # fmt: skip
    assert p.returncode == 2, p.stdout[-2000:] + p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    (only,) = p.stderr.strip().splitlines()
    assert line in only
    assert time.monotonic() - t0 < 90  # Ray start-up of the driver included; no waiting
