"""Writing video files with PyAV (which brings its own FFmpeg): the one writer privar uses.

H.264 (``libx264``, yuv420p, limited range) when this PyAV build has it, else MPEG-4 part 2.
A file is written under a temporary name beside its final one and renamed when finished, so an
interrupted write never leaves a half file under the real name. yuv420p needs even frame sizes:
an odd last row or column is dropped.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from privar.errors import UserError

_CONTAINERS = {".mp4": "mp4", ".avi": "avi", ".mkv": "matroska"}


@functools.cache
def best_codec() -> str:
    """``libx264`` when this PyAV build can encode with it, else ``mpeg4``."""
    try:
        av.codec.Codec("libx264", "w")
    except (av.codec.codec.UnknownCodecError, av.FFmpegError):
        return "mpeg4"
    return "libx264"


class VideoWriter:
    """An mp4 being written to a temporary name; :meth:`close` renames the finished file into
    place, :meth:`abort` removes it. Frames of another size than the first are scaled to it."""

    def __init__(
        self,
        out: Path,
        fps: float | Fraction,
        width: int,
        height: int,
        codec: str | None = None,
        crf: int = 18,
    ):
        if width < 2 or height < 2:
            raise UserError(f"{out}: frames of {width}x{height} pixels are too small to encode")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
        self.rate = Fraction(fps).limit_denominator(65535)
        codec = codec or best_codec()
        options = {"crf": str(crf), "preset": "fast"} if codec == "libx264" else {}
        self.container = av.open(
            str(self.tmp), "w", format=_CONTAINERS.get(out.suffix.lower(), "mp4")
        )
        self.stream = self.container.add_stream(codec, rate=self.rate, options=options)
        self.stream.width, self.stream.height = width & ~1, height & ~1
        self.stream.pix_fmt = "yuv420p"
        if codec != "libx264":  # MPEG-4's default 200 kb/s is too coarse: about 1/2 bit a pixel
            self.stream.bit_rate = max(200_000, int(width * height * self.rate / 2))
        self.count = 0

    def add(self, frame: av.VideoFrame) -> None:
        w, h = self.stream.width, self.stream.height
        size = (frame.width, frame.height)
        if size != (w, h) and (size[0] & ~1, size[1] & ~1) == (w, h):
            # an odd width or height: drop the last column or row
            rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)[:h, :w]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        # Limited-range ("MPEG") yuv420p, as players and decoders assume for H.264: decoded
        # images are full range and would otherwise keep full-range values, tagged as limited.
        frame = frame.reformat(
            w, h, "yuv420p", src_color_range=frame.color_range, dst_color_range="MPEG"
        )
        frame.pts, frame.time_base = self.count, 1 / self.rate
        self.count += 1
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        try:
            self.container.close()
        except av.FFmpegError:
            pass  # it was half written: it goes anyway
        self.tmp.unlink(missing_ok=True)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    codec: str | None = None,
    crf: int = 18,
) -> Path:
    """Encode uint8 RGB frames, each (H, W, 3), to ``path``; returns the path."""
    path = Path(path)
    writer = None
    try:
        for rgb in frames:
            if writer is None:
                writer = VideoWriter(path, fps, rgb.shape[1], rgb.shape[0], codec, crf)
            writer.add(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24"))
        if writer is None:
            raise ValueError(f"{path}: no frames to write")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return path
