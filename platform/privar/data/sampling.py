"""Which frames make a clip: small pure functions, as in the papers' protocols.

All functions return frame indices into a video of ``num_frames`` frames. Indices past the end
are clamped to the last frame, which is the papers' "pad by repeating the last frame" (ELR, Sec.
4.2). Random choices take a ``numpy.random.Generator`` so that a seed reproduces an epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def clip_span(clip_len: int, stride: int) -> int:
    """Frames covered by a clip of ``clip_len`` frames taken every ``stride`` frames."""
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be >= 1, got {clip_len}, {stride}")
    return (clip_len - 1) * stride + 1


def consecutive_indices(num_frames: int, clip_len: int, stride: int, start: int) -> list[int]:
    """``clip_len`` indices ``start, start + stride, ...``, the ones past the end padded with the
    last frame (``num_frames - 1``)."""
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    last = num_frames - 1
    return [min(start + i * stride, last) for i in range(clip_len)]


def max_start(num_frames: int, clip_len: int, stride: int) -> int:
    """The last start from which a whole clip fits; 0 when the video is too short."""
    return max(num_frames - clip_span(clip_len, stride), 0)


def center_start(num_frames: int, clip_len: int, stride: int) -> int:
    """Start of the centre clip (test time: ELR samples "from the center of a video")."""
    return max_start(num_frames, clip_len, stride) // 2


def random_start(num_frames: int, clip_len: int, stride: int, rng: np.random.Generator) -> int:
    """A uniformly random start among those where the whole clip fits (train time)."""
    return int(rng.integers(0, max_start(num_frames, clip_len, stride) + 1))


def clip_indices(
    num_frames: int,
    clip_len: int,
    stride: int,
    train: bool,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """The clip of one video: a random start at train time, the centre clip at test time."""
    if train:
        if rng is None:
            raise ValueError("train-time sampling needs an rng")
        start = random_start(num_frames, clip_len, stride, rng)
    else:
        start = center_start(num_frames, clip_len, stride)
    return consecutive_indices(num_frames, clip_len, stride, start)


def segment_indices(
    num_frames: int,
    num_segments: int,
    frames_per_segment: int,
    train: bool,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """K-segment sampling (TSN, used by STAT with K = 4 or 8).

    The video is cut into ``num_segments`` equal segments; from each, ``frames_per_segment``
    consecutive frames are taken (STAT: 1 frame for the 2D ResNet-34, 5 for R(2+1)D), at a random
    offset inside the segment at train time and from the segment's centre at test time. Returns
    ``num_segments * frames_per_segment`` indices, segment after segment.
    """
    if num_segments < 1 or frames_per_segment < 1:
        raise ValueError("num_segments and frames_per_segment must be >= 1")
    if train and rng is None:
        raise ValueError("train-time sampling needs an rng")
    out: list[int] = []
    for k in range(num_segments):
        # Segment k covers [lo, hi) in real-valued frame positions; short videos give empty or
        # overlapping segments, which the clamping below turns into repeated frames.
        lo = int(np.floor(k * num_frames / num_segments))
        hi = max(int(np.floor((k + 1) * num_frames / num_segments)), lo + 1)
        room = max(hi - lo - frames_per_segment, 0)
        offset = int(rng.integers(0, room + 1)) if train else room // 2
        out += consecutive_indices(num_frames, frames_per_segment, 1, lo + offset)
    return out


@dataclass(frozen=True)
class ClipSpec:
    """How to cut clips from videos: the values a data stream needs, nothing more.

    ``segments = 0`` gives one clip of ``clip_len`` frames every ``stride`` frames (ELR, BDQ);
    ``segments = K`` gives K-segment sampling with ``clip_len`` consecutive frames per segment
    (STAT), K * clip_len frames in all. ``size`` is (height, width) in pixels after decoding.
    """

    clip_len: int = 8
    stride: int = 1
    size: tuple[int, int] = (32, 32)
    segments: int = 0

    @property
    def num_frames(self) -> int:
        """Frames in one clip: T of the (B, C, T, H, W) batches."""
        return self.clip_len * max(self.segments, 1)

    @property
    def frames_needed(self) -> int:
        """Frames a video needs for a clip without padding: the span of one clip, or K segments
        of ``clip_len`` frames each."""
        if self.segments:
            return self.segments * self.clip_len
        return clip_span(self.clip_len, self.stride)

    def indices(
        self, num_frames: int, train: bool, rng: np.random.Generator | None = None
    ) -> list[int]:
        if self.segments:
            return segment_indices(num_frames, self.segments, self.clip_len, train, rng)
        return clip_indices(num_frames, self.clip_len, self.stride, train, rng)


def clip_rng(seed: int, epoch: int, video: int) -> np.random.Generator:
    """The generator for one video's clip in one epoch: the same on every worker and every run,
    whatever order the stream delivers videos in."""
    return np.random.default_rng((seed, epoch, video))
