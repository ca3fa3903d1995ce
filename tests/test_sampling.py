"""Clip-index math, pinned on hand-computed cases (ELR: stride 1 and 4, centre clip at test,
random offset at train, last-frame padding; STAT: K-segment sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from privar.data.sampling import (
    ClipSpec,
    center_start,
    clip_indices,
    clip_rng,
    clip_span,
    consecutive_indices,
    max_start,
    random_start,
    segment_indices,
)


def test_span_and_consecutive() -> None:
    assert clip_span(64, 1) == 64
    assert clip_span(64, 4) == 253
    assert consecutive_indices(100, 4, 1, 10) == [10, 11, 12, 13]
    assert consecutive_indices(100, 4, 4, 10) == [10, 14, 18, 22]


def test_short_video_pads_with_last_frame() -> None:
    assert consecutive_indices(5, 8, 1, 0) == [0, 1, 2, 3, 4, 4, 4, 4]
    assert consecutive_indices(5, 4, 2, 0) == [0, 2, 4, 4]
    assert consecutive_indices(1, 3, 4, 0) == [0, 0, 0]
    assert clip_indices(5, 8, 1, train=False) == [0, 1, 2, 3, 4, 4, 4, 4]


def test_centre_clip() -> None:
    assert max_start(100, 16, 1) == 84
    assert center_start(100, 16, 1) == 42
    assert clip_indices(100, 4, 4, train=False) == [43, 47, 51, 55]  # span 13, max start 87
    assert center_start(10, 16, 1) == 0


def test_random_start_covers_every_valid_start_and_nothing_else() -> None:
    rng = np.random.default_rng(0)
    starts = {random_start(20, 8, 2, rng) for _ in range(2000)}  # span 15 -> starts 0..5
    assert starts == set(range(6))
    assert {random_start(4, 8, 1, rng) for _ in range(50)} == {0}


def test_train_needs_rng() -> None:
    with pytest.raises(ValueError):
        clip_indices(100, 8, 1, train=True)


def test_segments_at_test_time_take_each_segment_centre() -> None:
    # 80 frames in 4 segments of 20: room 19 (1 frame) -> offset 9.
    assert segment_indices(80, 4, 1, train=False) == [9, 29, 49, 69]
    # 5 consecutive frames per segment (STAT's R(2+1)D): room 15 -> offset 7.
    assert segment_indices(80, 4, 5, train=False) == [
        7, 8, 9, 10, 11, 27, 28, 29, 30, 31, 47, 48, 49, 50, 51, 67, 68, 69, 70, 71,
    ]  # fmt: skip


def test_segments_of_a_short_video_repeat_frames() -> None:
    assert segment_indices(3, 8, 1, train=False) == [0, 0, 0, 1, 1, 1, 2, 2]


def test_train_segments_stay_inside_their_segment() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        idx = segment_indices(83, 8, 1, train=True, rng=rng)
        for k, i in enumerate(idx):
            assert int(np.floor(k * 83 / 8)) <= i < int(np.floor((k + 1) * 83 / 8))


def test_clip_spec_and_rng() -> None:
    spec = ClipSpec(clip_len=5, stride=1, size=(16, 16), segments=4)
    assert spec.num_frames == 20
    assert len(spec.indices(80, train=False)) == 20
    a = ClipSpec(clip_len=8, stride=2).indices(300, True, clip_rng(0, 3, 17))
    b = ClipSpec(clip_len=8, stride=2).indices(300, True, clip_rng(0, 3, 17))
    c = ClipSpec(clip_len=8, stride=2).indices(300, True, clip_rng(0, 4, 17))
    assert a == b and a != c


def test_frames_a_clip_needs_before_padding() -> None:
    assert ClipSpec(clip_len=8, stride=1).frames_needed == 8
    assert ClipSpec(clip_len=8, stride=2).frames_needed == 15  # (8 - 1) * 2 + 1
    assert ClipSpec(clip_len=5, segments=4).frames_needed == 20
    # A video one frame short gets its last frame repeated once.
    assert ClipSpec(clip_len=8).indices(7, train=False) == [0, 1, 2, 3, 4, 5, 6, 6]


def test_the_study_data_names_its_short_videos() -> None:
    from privar.data.dataset import StudyData
    from privar.data.manifest import VideoRecord

    records = [VideoRecord(f"v{n}.mp4", "a", "p", "train", num_frames=n, fps=25.0, height=32,
                           width=32) for n in (5, 8, 30)]  # fmt: skip
    data = StudyData(records, ClipSpec(clip_len=8))
    assert [r.num_frames for r in data.short()] == [5]
