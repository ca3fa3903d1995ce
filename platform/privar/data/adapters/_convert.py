"""Conversions shared by the adapters of datasets that do not ship one video file per sample.

The data layer decodes video files, so SBU and Jester (folders of frame images) and IPN Hand
(long videos annotated with gesture segments) are turned into mp4 clips once, by
:func:`frames_to_mp4` and :func:`cut_segments`. Both are

* idempotent: an output at least as new as its input is kept, so a second scan converts nothing.
  For a frame folder the input's time is the folder's own, which changes when frames are added,
  removed or renamed (not when one is rewritten in place: delete the clip to redo it);
* atomic: a clip is written under a temporary name beside its final one, then renamed, so an
  interrupted conversion never leaves a half file where a finished one is expected.

Clips are written by :class:`privar.data.writer.VideoWriter`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av

from privar.data.writer import VideoWriter
from privar.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

Segment = tuple[int, int, Path]
"""(first frame, last frame, output clip): 0-based frame indices, both included."""


def frame_files(folder: Path, pattern: str = "*") -> list[Path]:
    """The images in ``folder`` whose names match ``pattern``, in frame order (numbers in names
    compare as numbers, so ``9.jpg`` comes before ``10.jpg``)."""
    files = [p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(
        files, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]
    )


def frames_to_mp4(
    folder: Path,
    out: Path,
    fps: float,
    pattern: str = "*",
    first: int = 0,
    last: int | None = None,
    codec: str | None = None,
) -> Path:
    """Encode the images of ``folder`` matching ``pattern`` (see :func:`frame_files`) as the mp4
    ``out`` at ``fps``; ``first`` and ``last`` (0-based, both included) pick a range of them.
    Nothing is done when ``out`` is already newer than ``folder``."""
    if _up_to_date(out, folder):
        return out
    files = frame_files(folder, pattern)
    if not files:
        raise UserError(f"{folder}: no frame images matching {pattern!r}")
    if last is not None and last >= len(files):
        raise UserError(f"{folder}: frame {last + 1} asked for, but it holds {len(files)} frames")
    writer = None
    try:
        for path in files[first : None if last is None else last + 1]:
            frame = _read_image(path)
            if writer is None:
                writer = VideoWriter(out, fps, frame.width, frame.height, codec)
            writer.add(frame)
        if writer is None:
            raise UserError(f"{folder}: no frames in the range {first + 1}..{last}")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return out


def cut_segments(video: Path, segments: Sequence[Segment], codec: str | None = None) -> list[Path]:
    """Cut each segment ``(first, last, out)`` of ``video`` (frames 0-based, both included) into
    its own mp4 at the video's frame rate, all in one decoding pass. Segments whose clip is newer
    than ``video`` are kept; the video is not opened when all are. Returns the clips in order."""
    todo = sorted((s for s in segments if not _up_to_date(s[2], video)), key=lambda s: s[0])
    if todo:
        _cut(video, todo, codec)
    return [out for _, _, out in segments]


def _cut(video: Path, todo: list[Segment], codec: str | None) -> None:
    writers: dict[Path, VideoWriter] = {}
    index = -1
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = stream.average_rate or stream.guessed_rate or Fraction(25)
            end = max(last for _, last, _ in todo)
            for index, frame in enumerate(container.decode(stream)):
                for first, last, out in todo:
                    if first <= index <= last:
                        if out not in writers:
                            writers[out] = VideoWriter(out, fps, frame.width, frame.height, codec)
                        writers[out].add(frame)
                        if index == last:
                            writers.pop(out).close()
                if index >= end:
                    break
    except av.FFmpegError as e:
        raise UserError(f"{video}: cannot decode: {e}") from None
    finally:
        for w in writers.values():
            w.abort()
    short = [(first, last) for first, last, _ in todo if last > index]
    if short:
        first, last = short[0]
        raise UserError(
            f"{video}: segment of frames {first + 1}..{last + 1} goes past its {index + 1} frames"
        )


def _up_to_date(out: Path, source: Path) -> bool:
    try:
        return out.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except FileNotFoundError:
        return False


def _read_image(path: Path) -> av.VideoFrame:
    try:
        with av.open(str(path)) as container:
            return next(container.decode(video=0))
    except (av.FFmpegError, StopIteration) as e:
        raise UserError(f"{path}: cannot read this frame image: {e}") from None
