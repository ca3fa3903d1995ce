"""Probing in child processes: broken files are quarantined with a reason, never fatal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from privar.data.manifest import VideoRecord
from privar.data.probe import ProbeWorker, probe_records


def _rec(path: str | Path) -> VideoRecord:
    return VideoRecord(str(path), "walk", "actor1", "train")


def _truncated(tmp_path: Path, faststart: bool) -> Path:
    """A real H.264 file cut in half. With the index up front (faststart), the header still
    promises all 40 frames."""
    import av

    full = tmp_path / "full.mp4"
    opts = {"movflags": "faststart"} if faststart else {}
    c = av.open(str(full), "w", options=opts)
    s = c.add_stream("libx264", rate=25)
    s.width = s.height = 64
    s.pix_fmt = "yuv420p"
    rng = np.random.default_rng(0)
    for _ in range(40):  # noise, so the file is large and the cut lands in frame data
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 64, 3), np.uint8), "rgb24")
        for p in s.encode(frame):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    out = tmp_path / f"truncated_{faststart}.mp4"
    data = full.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def test_good_and_broken_files(tmp_path: Path, make_video) -> None:
    good = make_video("good.mp4", num_frames=9, size=(32, 32))
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    paths = [good, empty, text, tmp_path / "missing.mp4", _truncated(tmp_path, False)]
    result = probe_records([_rec(p) for p in paths], workers=2, timeout_s=20)
    assert [(r.path, r.num_frames, r.height, r.width) for r in result.records] == [
        (good, 9, 32, 32)
    ]
    reasons = {Path(q.path).name: q.reason for q in result.quarantined}
    assert reasons["empty.mp4"] == "empty file (0 bytes)"
    assert reasons["missing.mp4"] == "file not found"
    assert reasons["notes.mp4"].startswith("cannot open")
    assert reasons["truncated_False.mp4"].startswith("cannot open")
    assert len(result.quarantined) == 4


def test_frame_count_that_lies(tmp_path: Path) -> None:
    # PyAV trusts the header's frame count; decoding the last promised frame shows it lies.
    path = _truncated(tmp_path, faststart=True)
    result = probe_records([_rec(path)], timeout_s=20, decoder_name="pyav")
    assert not result.records
    assert result.quarantined[0].reason.startswith("frame count lies: header says 40 frames")


def test_a_decoder_that_hangs_is_timed_out_and_replaced(tmp_path: Path, make_video) -> None:
    # Opening a FIFO with no writer blocks inside FFmpeg forever: a real hang of the decoder.
    fifo = tmp_path / "stalled.mp4"
    os.mkfifo(fifo)
    good = make_video("good.mp4", num_frames=5)
    worker = ProbeWorker()
    try:
        result = probe_records([_rec(fifo), _rec(good)], workers=1, timeout_s=2)
    finally:
        worker.close()
    assert [q.reason for q in result.quarantined] == ["decoder hung (no answer in 2 s)"]
    assert [r.num_frames for r in result.records] == [5]  # the replacement worker went on


def test_already_probed_records_are_kept_unless_forced(make_video) -> None:
    path = make_video("v.mp4", num_frames=7)
    stale = VideoRecord(path, "a", "p", "train", num_frames=99, fps=1.0, height=1, width=1)
    assert probe_records([stale]).records == [stale]
    assert probe_records([stale], force=True).records[0].num_frames == 7


def _cut(tmp_path: Path, suffix: str, keep: float) -> Path:
    """A real 32-frame H.264 video in an AVI or Matroska container, cut after ``keep`` of its
    bytes. Both keep their header, so decord opens the rest as a short video."""
    import av

    full = tmp_path / f"full{suffix}"
    rng = np.random.default_rng(0)
    with av.open(str(full), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        # One thread, no B-frames, no macroblock tree: the same bytes every run (x264's
        # threaded output varies), so every cut lands in the same place.
        s.options = {"x264-params": "bframes=0:mbtree=0"}
        s.codec_context.thread_count = 1
        for _ in range(32):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), np.uint8), "rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode())
    out = tmp_path / f"cut{int(keep * 100)}{suffix}"
    data = full.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def test_a_truncated_file_is_not_taken_for_a_short_one(tmp_path: Path) -> None:
    """decord counts the frames it finds, so a cut AVI or MKV looked like a valid short video;
    the container's own count (AVI) or duration (Matroska) says it is not."""
    cut = [_cut(tmp_path, suffix, keep) for suffix in (".avi", ".mkv") for keep in (0.5, 0.8)]
    whole = [tmp_path / "full.avi", tmp_path / "full.mkv"]
    result = probe_records([_rec(p) for p in cut + whole], workers=2, timeout_s=20)
    assert sorted(r.path for r in result.records) == sorted(str(p) for p in whole)
    assert all(r.num_frames == 32 for r in result.records)
    reasons = {Path(q.path).name: q.reason for q in result.quarantined}
    assert sorted(reasons) == sorted(p.name for p in cut)
    truncated = "truncated: the container declares 32 frames, decord decodes"
    # decord alone opens all four as short, valid videos (8 to 24 frames).
    assert all(reason.startswith(truncated) for reason in reasons.values()), reasons
