"""Shared fixtures: real video files written with PyAV, one real local Ray per session, and one
real `mlflow server` per session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from privar.data.dataset import StudyData
from privar.data.manifest import VideoRecord
from privar.data.probe import probe_records
from privar.data.sampling import ClipSpec
from privar.data.writer import write_video
from ray_nodes import free_port, stop_group

# Frame i of a fixture video is filled with this grey level, so a test can tell which frames it
# got back after lossy coding (x264 moves levels by a few units at most).
LEVEL_STEP = 12


def frame_levels(clip: np.ndarray) -> list[int]:
    """The frame index each frame of a (T, H, W, C) fixture clip shows."""
    return [round(float(f.mean()) / LEVEL_STEP) for f in clip]


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., str]:
    """``make_video(name, num_frames=12, size=(32, 40))`` writes a real H.264 file whose frame
    i is flat grey ``i * LEVEL_STEP``; returns its path."""

    def make(name: str, num_frames: int = 12, size: tuple[int, int] = (32, 40), **kw) -> str:
        h, w = size
        frames = (np.full((h, w, 3), i * LEVEL_STEP, np.uint8) for i in range(num_frames))
        return str(write_video(tmp_path / name, frames, **kw))

    return make


@pytest.fixture(scope="session")
def ray_local() -> Iterator[dict]:
    """A real local Ray with 2 CPUs for the whole session, shut down at the end."""
    from privar.cluster import connect, disconnect

    resources = connect(num_cpus=2)
    yield resources
    disconnect()


def start_mlflow_server(root: Path, port: int) -> subprocess.Popen:
    """A real `mlflow server` on 127.0.0.1:``port`` (sqlite store and artifacts under ``root``)
    in a process group of its own, once it answers. MLflow 3's job runner (a pool of huey
    consumers polling the store, for GenAI evaluation jobs privar never submits) stays off: it
    would take a fifth of a core of the test machine's two."""
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
         "--port", str(port), "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                stop_group(server)
                raise RuntimeError("mlflow server did not come up") from None
            time.sleep(0.2)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """A real `mlflow server` (sqlite backend, artifacts served) on a free port, stopped by its
    process group."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    server = start_mlflow_server(root, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(server, grace_s=30)  # the server and its uvicorn workers


def colour_motion_videos(root: Path, num_videos: int, num_train: int, size: tuple[int, int],
                         num_frames: int) -> list[VideoRecord]:  # fmt: skip
    """Real videos of moving noise: 2 actions (which way the texture moves) x 2 actors (a strong
    colour cue), alternating so every action and actor is in both splits; probed records."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(num_videos):
        action, actor = i % 2, (i // 2) % 2
        base = rng.integers(0, 120, (*size, 3), dtype=np.uint8)
        base[..., actor] += 100  # the actor's colour
        step = 2 if action else -2
        clip = [np.roll(base, step * t, axis=1) for t in range(num_frames)]
        split = "train" if i < num_train else "val"
        rows.append(VideoRecord(str(write_video(root / f"v{i}.mp4", clip)), f"move{action}",
                                f"actor{actor}", split))  # fmt: skip
    return probe_records(rows).records


@pytest.fixture(scope="session")
def colour_motion_data(tmp_path_factory, ray_local) -> StudyData:
    """16 videos of 8 frames, 32x32: 12 train, 4 validation (2 per actor, so a constant guess
    scores exactly 0.5), as 4-frame clips in a clip cache."""
    root = tmp_path_factory.mktemp("farm_videos")
    records = colour_motion_videos(root, 16, 12, (32, 32), 8)
    data = StudyData(
        records, ClipSpec(clip_len=4, stride=1, size=(32, 32)), cache_root=root / "cache"
    )
    data.prepare()
    return data


def tiny_study(name: str, root: str | Path = "synthetic", out: str | Path = "out",
               changes: dict[str, Any] | None = None) -> str:  # fmt: skip
    """The suite's end-to-end study file, as YAML: 2 trials of 1 epoch on 8-frame 32x32 clips of
    a small synthetic set, farmed by two baby adversaries, the baby reconstruction UNet and the
    identity baseline. ``changes`` replaces dotted keys (``{"train.epochs": 3}``; ``None``
    values included). Relative paths resolve where ``privar`` runs."""
    study: dict[str, Any] = {
        "name": name,
        "data": {"adapter": "synthetic", "root": str(root),
                 "options": {"num_actors": 3, "num_actions": 2, "clips_per_pair": 4,
                             "num_frames": 10, "height": 32, "width": 32},
                 "clip_len": 8, "size": [32, 32]},
        "scheme": "adversarial",
        "encoder": {"name": "bdq"},
        "action_model": {"name": "baby3d"},
        "privacy_model": {"name": "baby2d"},
        "train": {"epochs": 1, "batch_size": 8, "optimizer": "adam", "lr": 0.003},
        "search": {"sampler": "random", "num_trials": 2, "concurrency": 2,
                   "space": {"adversarial.alpha": {"type": "loguniform", "low": 0.1, "high": 8.0},
                             "encoder.params.levels": {"type": "choice", "values": [4, 8]}}},
        "farm": {"adversaries": ["baby2d", "baby2d_wide"], "epochs": 1,
                 "reconstruction": "baby_unet3d", "recon_epochs": 1,
                 "baselines": [{"name": "identity"}]},
        "out_dir": str(out),
    }  # fmt: skip
    for dotted, value in (changes or {}).items():
        *parents, leaf = dotted.split(".")
        node = study
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return yaml.safe_dump(study, sort_keys=False)
