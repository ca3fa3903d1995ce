"""Shared fixtures: real video files written with PyAV, and one real local Ray per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

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
