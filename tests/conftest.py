"""Shared fixtures: real video files written with PyAV, and one real local Ray per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from privar.data.manifest import VideoRecord
from privar.data.probe import probe_records
from privar.data.sampling import ClipSpec
from privar.data.stream import StudyData
from privar.data.writer import write_video

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
