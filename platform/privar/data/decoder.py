"""Video decoding behind a small interface: decord by default, PyAV as the second.

A decoder answers two questions about a file: what is in it (``probe``) and what do these frames
look like (``read``). Both raise :class:`privar.errors.BrokenVideo` for a file they cannot decode.
decord can hang forever on some files while holding the GIL, so code that touches files it has
not probed yet goes through :mod:`privar.data.probe`, which runs the decoder in a child process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from privar.errors import BrokenVideo
from privar.registry import Registry

Size = tuple[int, int]
"""(height, width) in pixels."""


@dataclass(frozen=True)
class VideoInfo:
    """What probing a file found: frame count, frames per second and frame size in pixels."""

    num_frames: int
    fps: float
    height: int
    width: int


class Decoder(Protocol):
    name: str

    def probe(self, path: str) -> VideoInfo: ...

    def read(self, path: str, indices: Sequence[int], size: Size | None = None) -> np.ndarray:
        """Frames ``indices`` of ``path`` as uint8 (T, H, W, C), C = 3 (RGB), resized to ``size``
        (height, width) on the way when given."""
        ...


def _check_indices(path: str, indices: Sequence[int], num_frames: int) -> None:
    if len(indices) == 0:
        raise ValueError("no frame indices to read")
    bad = [i for i in indices if not 0 <= i < num_frames]
    if bad:
        raise BrokenVideo(path, f"frame {bad[0]} asked for, but the file has {num_frames} frames")


def resize_frames(frames: np.ndarray, size: Size) -> np.ndarray:
    """Resize uint8 frames (T, H, W, C) to (T, size[0], size[1], C), bilinear with antialiasing.

    One resize for every decoder, so decoders agree pixel for pixel. (decord 0.6.0's own resize
    fails for many target widths, e.g. 16, 24 and 48 pixels.)
    """
    import torch
    import torch.nn.functional as F

    if frames.shape[1:3] == tuple(size):
        return frames
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


class DecordDecoder:
    """decord's ``VideoReader``: random access to frames by index."""

    name = "decord"

    def __init__(self, num_threads: int = 1) -> None:
        # One thread per decoder: parallelism comes from Ray workers, one decoder each.
        self.num_threads = num_threads

    def _open(self, path: str):
        import decord

        try:
            return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=self.num_threads)
        except Exception as e:  # decord raises its own DECORDError or RuntimeError
            raise BrokenVideo(path, f"cannot open: {_first_line(e)}") from None

    def probe(self, path: str) -> VideoInfo:
        vr = self._open(path)
        n = len(vr)
        if n < 1:
            raise BrokenVideo(path, "no frames")
        try:
            first = vr[0].asnumpy()
            fps = float(vr.get_avg_fps())
        except Exception as e:
            raise BrokenVideo(path, f"cannot decode the first frame: {_first_line(e)}") from None
        _check_rgb(path, first)
        return VideoInfo(num_frames=n, fps=fps, height=first.shape[0], width=first.shape[1])

    def read(self, path: str, indices: Sequence[int], size: Size | None = None) -> np.ndarray:
        vr = self._open(path)
        _check_indices(path, indices, len(vr))
        # Frame by frame, not get_batch: decord 0.6.0's get_batch fails on frame widths of 16,
        # 24 and 48 pixels (misaligned row copy), and is no faster for a clip.
        unique = sorted(set(indices))
        got = {}
        for i in unique:
            try:
                got[i] = vr[i].asnumpy()
            except Exception as e:
                raise BrokenVideo(path, f"cannot decode frame {i}: {_first_line(e)}") from None
        _check_rgb(path, got[unique[0]])
        frames = np.stack([got[i] for i in indices])
        return resize_frames(frames, size) if size else frames


def _check_rgb(path: str, frame: np.ndarray) -> None:
    """decord 0.6.0 scrambles frames of some small widths (16, 24, 48 pixels), returning a
    buffer of the right size in the wrong shape, e.g. (32, 48, 4). Never train on that."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise BrokenVideo(
            path,
            f"decord returns scrambled {frame.shape} frames for this frame size "
            "(a decord 0.6.0 bug); decode this dataset with decoder: pyav",
        )


class PyAVDecoder:
    """PyAV (FFmpeg), decoding forward from the start: slower for sparse indices, but a second
    opinion on files decord gets wrong."""

    name = "pyav"

    def _frames(self, path: str):
        import av

        try:
            container = av.open(path)
            stream = container.streams.video[0]
        except Exception as e:
            raise BrokenVideo(path, f"cannot open: {_first_line(e)}") from None
        return container, stream

    def probe(self, path: str) -> VideoInfo:
        container, stream = self._frames(path)
        with container:
            n = stream.frames
            try:
                first = next(container.decode(stream))
            except Exception as e:
                raise BrokenVideo(
                    path, f"cannot decode the first frame: {_first_line(e)}"
                ) from None
            if n <= 0:  # containers without a frame count in their header: count by decoding
                n = 1 + sum(1 for _ in container.decode(stream))
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            return VideoInfo(num_frames=n, fps=fps, height=first.height, width=first.width)

    def read(self, path: str, indices: Sequence[int], size: Size | None = None) -> np.ndarray:
        if len(indices) == 0:
            raise ValueError("no frame indices to read")
        wanted = set(indices)
        last = max(indices)
        got: dict[int, np.ndarray] = {}
        container, stream = self._frames(path)
        with container:
            try:
                for i, frame in enumerate(container.decode(stream)):
                    if i in wanted:
                        got[i] = frame.to_ndarray(format="rgb24")
                    if i >= last:
                        break
            except Exception as e:
                raise BrokenVideo(path, f"cannot decode frames: {_first_line(e)}") from None
        missing = wanted - got.keys()
        if missing:
            raise BrokenVideo(path, f"frame {min(missing)} asked for, but the file ends before it")
        frames = np.stack([got[i] for i in indices])
        return resize_frames(frames, size) if size else frames


def declared_frames(path: str) -> int | None:
    """How many frames the container says ``path`` holds, read from its header by PyAV without
    decoding: the stream's frame count where the container keeps one (MP4, AVI), else its
    duration times the frame rate (Matroska); ``None`` when it says neither or cannot be read.
    A decoder that indexes the packets it finds (decord) reports what survived of a truncated
    file, so this is the count to hold it against."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if stream.frames > 0:
                return int(stream.frames)
            rate = float(stream.average_rate or stream.guessed_rate or 0.0)
            if container.duration and rate > 0:
                return round(container.duration / av.time_base * rate)
    except Exception:  # the decoder's own probe says why the file is broken
        return None
    return None


DECODERS: Registry[Decoder] = Registry("decoder")
DECODERS.register("decord")(DecordDecoder)
DECODERS.register("pyav")(PyAVDecoder)


def list_decoders() -> list[str]:
    return DECODERS.names()


def create_decoder(name: str = "decord") -> Decoder:
    """Decoder ``name``; an unknown one is a :class:`UserError` listing the known ones."""
    return DECODERS.create(name)


# decord starts its messages with a time and its own source line, once per layer it passed:
# "[21:41:19] /github/workspace/src/video/ffmpeg/threaded_decoder.cc:292: ..."
_DECORD_PREFIX = re.compile(r"^(\[[\d:]+\] \S+:\d+: )+")


def _first_line(e: BaseException) -> str:
    """The decoder's error in one line a user can read."""
    text = str(e).strip() or type(e).__name__
    line = _DECORD_PREFIX.sub("", text.splitlines()[0])
    if "avcodec_send_packet" in line:  # decord's failed check on FFmpeg's decoder
        return "corrupt data (FFmpeg's decoder rejects a packet)"
    return line[:200]
