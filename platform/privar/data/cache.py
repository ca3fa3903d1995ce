"""The clip cache: every video's frames, decoded once per study, in one file on disk.

Layout of a cache folder::

    frames.u8     uint8, all videos' frames back to back, each (H, W, C) at the cache's size
    index.json    per video: offset (in frames) and frame count; the size; the key
    COMPLETE      written last: a cache without it is half-built and is built again

Whole videos are kept (not fixed clips) so that train-time random offsets still vary by epoch.
A read is a slice of a memory map: no decoding, and the page cache serves repeated epochs.
The folder can live on local disk or on storage shared by the cluster's nodes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from privar.data.decoder import Size
from privar.data.manifest import VideoRecord

CHANNELS = 3


def cache_bytes(records: Sequence[VideoRecord], size: Size) -> int:
    """Bytes a cache of ``records`` at ``size`` (height, width) takes on disk."""
    return sum(r.num_frames for r in records) * size[0] * size[1] * CHANNELS


def cache_key(records: Sequence[VideoRecord], size: Size, decoder: str) -> str:
    """Changes when a video, its file, the size or the decoder changes."""
    h = hashlib.sha256(f"{size}|{decoder}".encode())
    for r in records:
        try:
            st = os.stat(r.path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{r.path}|{r.num_frames}|{stamp}\n".encode())
    return h.hexdigest()[:16]


class ClipCache:
    """Read side of a complete cache: ``clip(video, indices)`` -> uint8 (T, H, W, C)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        meta = json.loads((self.folder / "index.json").read_text())
        self.key: str = meta["key"]
        self.size: Size = tuple(meta["size"])  # type: ignore[assignment]
        self.offsets = np.asarray(meta["offsets"], dtype=np.int64)
        self.counts = np.asarray(meta["counts"], dtype=np.int64)
        self._frames: np.memmap | None = None  # opened lazily: a cache pickles to Ray workers

    @staticmethod
    def is_complete(folder: str | os.PathLike, key: str) -> bool:
        folder = Path(folder)
        if not (folder / "COMPLETE").exists():
            return False
        return json.loads((folder / "index.json").read_text()).get("key") == key

    @property
    def frames(self) -> np.memmap:
        if self._frames is None:
            h, w = self.size
            total = int(self.counts.sum())
            self._frames = np.memmap(
                self.folder / "frames.u8", dtype=np.uint8, mode="r", shape=(total, h, w, CHANNELS)
            )
        return self._frames

    def __len__(self) -> int:
        return len(self.counts)

    def clip(self, video: int, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` of video ``video`` as uint8 (T, H, W, C)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.min() < 0 or idx.max() >= self.counts[video]:
            raise IndexError(f"video {video} has {self.counts[video]} frames, asked for {idx}")
        return np.asarray(self.frames[self.offsets[video] + idx])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_frames": None}


def create_cache(
    folder: str | os.PathLike, records: Sequence[VideoRecord], size: Size, key: str
) -> None:
    """Lay out an empty cache for ``records`` (probed) at ``size``; writers fill it with
    :func:`write_video` and :func:`mark_complete` seals it."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    counts = np.array([r.num_frames for r in records], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    with open(folder / "frames.u8", "wb") as f:
        f.truncate(cache_bytes(records, size))  # sparse until written
    meta = {"key": key, "size": list(size), "offsets": offsets.tolist(), "counts": counts.tolist()}
    (folder / "index.json").write_text(json.dumps(meta))


def write_video(folder: str | os.PathLike, video: int, frames: np.ndarray) -> None:
    """Write video ``video``'s frames (T, H, W, C) into its slot. Safe from many processes at
    once: slots do not overlap. A video that decoded to fewer frames than probed is padded with
    its last frame, the papers' padding rule."""
    cache = ClipCache(folder)
    n = int(cache.counts[video])
    if len(frames) < n:
        frames = np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])
    out = np.memmap(
        cache.folder / "frames.u8",
        dtype=np.uint8,
        mode="r+",
        offset=int(cache.offsets[video]) * frames[0].size,
        shape=(n, *frames.shape[1:]),
    )
    out[:] = frames[:n]
    out.flush()
    del out


def mark_complete(folder: str | os.PathLike) -> None:
    (Path(folder) / "COMPLETE").write_text("ok\n")
