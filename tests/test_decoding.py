"""Decoders on real files: the frames asked for, at the size asked for, from decord and PyAV."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import frame_levels
from privar.data.decoder import create_decoder, list_decoders, resize_frames
from privar.errors import BrokenVideo


@pytest.mark.parametrize("name", ["decord", "pyav"])
def test_probe_and_read(make_video, name: str) -> None:
    path = make_video("v.mp4", num_frames=12, size=(32, 40), fps=15)
    dec = create_decoder(name)
    info = dec.probe(path)
    assert (info.num_frames, info.height, info.width) == (12, 32, 40)
    assert info.fps == pytest.approx(15.0)
    clip = dec.read(path, [0, 3, 3, 11])
    assert clip.shape == (4, 32, 40, 3) and clip.dtype == np.uint8
    assert frame_levels(clip) == [0, 3, 3, 11]


@pytest.mark.parametrize("size", [(12, 16), (16, 24), (32, 32), (24, 40)])
def test_decoders_agree_at_every_size(make_video, size: tuple[int, int]) -> None:
    # decord 0.6.0's own resize breaks at widths 16, 24 and 48: privar resizes after decoding.
    path = make_video("v.mp4", num_frames=10, size=(48, 64))
    a = create_decoder("decord").read(path, [1, 5, 9], size)
    b = create_decoder("pyav").read(path, [1, 5, 9], size)
    assert a.shape == b.shape == (3, *size, 3)
    assert np.array_equal(a, b)
    assert frame_levels(a) == [1, 5, 9]


def test_read_past_the_end_is_a_broken_video(make_video) -> None:
    path = make_video("v.mp4", num_frames=6)
    for name in list_decoders():
        with pytest.raises(BrokenVideo, match="frame 6"):
            create_decoder(name).read(path, [0, 6])


def test_resize_keeps_flat_frames_flat() -> None:
    frames = np.full((2, 30, 40, 3), 77, np.uint8)
    out = resize_frames(frames, (12, 16))
    assert out.shape == (2, 12, 16, 3) and (out == 77).all()


def test_decord_scrambled_widths_are_refused_and_pyav_reads_them(make_video) -> None:
    path = make_video("w48.mp4", num_frames=4, size=(32, 48))
    with pytest.raises(BrokenVideo, match="decoder: pyav"):
        create_decoder("decord").probe(path)
    with pytest.raises(BrokenVideo, match="scrambled"):
        create_decoder("decord").read(path, [0])
    assert frame_levels(create_decoder("pyav").read(path, [0, 3])) == [0, 3]
