"""Writing video files with PyAV (which brings its own FFmpeg): the one writer privar uses."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    codec: str = "libx264",
    crf: int = 12,
) -> Path:
    """Encode uint8 RGB frames, each (H, W, 3) with even H and W for yuv420p, to ``path``.

    Written to a temporary name and renamed at the end, so an interrupted write never leaves a
    half file under the real name. ``crf`` (x264's quality, lower is better) defaults high:
    privar's synthetic frames are tiny and compression artefacts would swamp them.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    container = av.open(str(tmp), "w", format=_format(path))
    try:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=round(fps))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": str(crf)}
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"{path}: no frames to write")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    os.replace(tmp, path)
    return path


def _format(path: Path) -> str:
    return {".mp4": "mp4", ".avi": "avi", ".mkv": "matroska"}.get(path.suffix.lower(), "mp4")
