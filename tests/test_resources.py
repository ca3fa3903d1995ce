"""Resource arithmetic (pure) and the autoscaler config reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from privar.cluster import _bootstrap_node_types
from privar.errors import UserError
from privar.resources import (
    Capacity,
    NodeType,
    check_group,
    concurrency,
    copies,
    describe,
    fits,
    waits_for_a_new_node,
)

ONE_GPU_NODE = {"CPU": 16.0, "GPU": 1.0, "memory": 64 * 2**30}


def test_fits_needs_every_resource() -> None:
    assert fits({"CPU": 1, "GPU": 0.5}, ONE_GPU_NODE)
    assert not fits({"CPU": 1, "GPU": 2}, ONE_GPU_NODE)
    assert fits({"CPU": 1, "GPU": 0}, {"CPU": 1})  # a zero ask needs nothing
    assert not fits({"CPU": 1, "memory": 2**30}, {"CPU": 4})


def test_copies_counts_the_scarcest_resource() -> None:
    # The reported hang: 16 CPUs at 1 per job are 16 jobs, but 0.25 GPU each fit only 4.
    assert copies([{"CPU": 1, "GPU": 0.25}], [ONE_GPU_NODE]) == 4
    # 96 CPUs and 8 GPUs: 32 jobs at a quarter GPU, not 96.
    assert copies([{"CPU": 1, "GPU": 0.25}], [{"CPU": 96, "GPU": 8}]) == 32
    assert copies([{"CPU": 1, "GPU": 0.5}], [{"CPU": 4, "GPU": 1}]) == 2
    assert copies([{"CPU": 3}], [{"CPU": 4}, {"CPU": 4}]) == 2  # a bundle never spans nodes
    assert copies([{"CPU": 1}, {"CPU": 1}], [{"CPU": 4}]) == 2  # a trial and its data CPU
    assert copies([{"CPU": 1}], []) == 0


def test_concurrency_caps_at_what_the_cluster_holds() -> None:
    cap = Capacity(({"CPU": 4, "GPU": 1},))
    assert concurrency([{"CPU": 1, "GPU": 0.5}], cap, 8) == 2
    assert concurrency([{"CPU": 1}], cap, 2) == 2
    # The autoscaler's nodes count: two more one-GPU workers make room for six trials.
    grow = Capacity(({"CPU": 4, "GPU": 1},), (NodeType("gpu", {"CPU": 4, "GPU": 1}, 2),))
    assert concurrency([{"CPU": 1, "GPU": 0.5}], grow, 8) == 6
    # Workers already up are not counted twice.
    up = Capacity(({"CPU": 4, "GPU": 1}, {"CPU": 4, "GPU": 1}),
                  (NodeType("gpu", {"CPU": 4, "GPU": 1}, 1, running=1),))  # fmt: skip
    assert concurrency([{"CPU": 1, "GPU": 0.5}], up, 8) == 4


def test_a_bundle_no_node_can_hold_names_its_key() -> None:
    cap = Capacity(({"CPU": 4, "GPU": 1},))
    with pytest.raises(UserError) as e:
        check_group([{"CPU": 1, "GPU": 2}], cap, {"GPU": "resources.gpu"}, "each trial")
    msg = str(e.value)
    assert msg.startswith("resources.gpu: each trial asks {CPU: 1, GPU: 2}")
    assert "largest node has GPU 1" in msg and "no autoscaler" in msg
    with pytest.raises(UserError, match="farm.memory_gb_per_job: .* memory: 8 GiB"):
        check_group([{"CPU": 1, "memory": 8 * 2**30}], Capacity(({"CPU": 4, "memory": 2**30},)),
                    {"memory": "farm.memory_gb_per_job"}, "each farm job")  # fmt: skip


def test_the_autoscaler_makes_a_bundle_feasible() -> None:
    head_only = ({"CPU": 2},)
    gpu_type = NodeType("gpu_node", {"CPU": 2, "GPU": 1}, 1)
    check_group([{"CPU": 1, "GPU": 0.5}], Capacity(head_only, (gpu_type,)), {}, "each trial")
    # A type whose size the config leaves to the cloud might fit: no refusal, Ray decides.
    unknown = NodeType("cloud", None, 4)
    check_group([{"GPU": 8}], Capacity(head_only, (unknown,)), {}, "each trial")
    with pytest.raises(UserError, match="the autoscaler can add none larger"):
        check_group([{"GPU": 2}], Capacity(head_only, (gpu_type,)), {}, "each trial")


def test_a_group_waits_for_a_new_node_only_when_no_node_holds_it_now() -> None:
    gpu_type = NodeType("gpu_node", {"CPU": 2, "GPU": 1}, 1)
    trial = [{"CPU": 1, "GPU": 0.5}, {"CPU": 1}]  # training, and its data tasks
    assert waits_for_a_new_node(trial, Capacity(({"CPU": 2},), (gpu_type,)))
    assert not waits_for_a_new_node(trial, Capacity(({"CPU": 2, "GPU": 1},), (gpu_type,)))
    # No autoscaler: nothing to wait for (check_group refuses such a trial).
    assert not waits_for_a_new_node(trial, Capacity(({"CPU": 2},)))
    # The type's one worker is up already: the autoscaler adds nothing more.
    up = NodeType("gpu_node", {"CPU": 2, "GPU": 1}, 1, running=1)
    assert not waits_for_a_new_node(trial, Capacity(({"CPU": 2},), (up,)))


def test_describe() -> None:
    assert describe({"CPU": 1.0, "GPU": 0.5, "memory": 2 * 2**30}) == (
        "{CPU: 1, GPU: 0.5, memory: 2 GiB}")  # fmt: skip


def test_autoscaler_node_types_from_its_config(tmp_path: Path) -> None:
    path = tmp_path / "ray_bootstrap_config.yaml"
    path.write_text(yaml.safe_dump({
        "max_workers": 3, "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 4}, "max_workers": 0},
            "gpu1": {"resources": {"CPU": 8, "GPU": 1}, "min_workers": 0, "max_workers": 10},
            "gpu8": {"node_config": {}, "max_workers": 2},
        },
    }))  # fmt: skip
    types = {t.name: t for t in _bootstrap_node_types(path)}
    assert set(types) == {"gpu1", "gpu8"}
    assert types["gpu1"].resources == {"CPU": 8, "GPU": 1} and types["gpu1"].max_workers == 3
    assert types["gpu8"].resources is None and types["gpu8"].max_workers == 2
    assert _bootstrap_node_types(tmp_path / "missing.yaml") == []
