"""A corpus of broken videos, made for real by the test (PyAV, then cutting bytes, patching a
header, locking a file): `privar data check` and a study's data quarantine each with a reason
that says what is wrong, count them, keep the good ones and go on; a study left without the
videos its splits need stops with one line; a video that breaks inside a Ray worker reaches
the driver's quarantine even when the worker dies right after."""

from __future__ import annotations

import ctypes
import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import ray

from conftest import tiny_study
from privar.data.dataset import StudyData
from privar.data.manifest import VideoRecord, read_quarantine, write_manifest
from privar.data.pipeline import open_study_data
from privar.data.probe import probe_records
from privar.data.sampling import ClipSpec
from privar.data.writer import write_video
from privar.errors import UserError
from privar.recipes.run_study import run_study
from privar.study import DataConfig
from privar.tracking import Tracker

PRIVAR = str(Path(sys.executable).parent / "privar")
FRAMES = 24  # of every corpus video; 32x32 pixels of noise, so cuts land in frame data
# decord's decoding thread runs ahead of the frames asked for (by ~50 frames of 32x32 noise
# here, now and then ~100): with 200 frames, 1 probe in 200 hit the damaged frame 100; with
# 400, none in 200.
DAMAGED_FRAMES = 400


def _noise(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (32, 32, 3), np.uint8) for _ in range(n)]


def _cut(src: Path, out: Path, keep: float) -> Path:
    data = src.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def _faststart(path: Path) -> Path:
    """An MP4 with its index (moov) before the frames, as streaming sites serve them: cut, it
    still opens and promises every frame."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=25)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for f in _noise(FRAMES, 1):
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, "rgb24")))
        c.mux(s.encode())
    return path


def _lying_avi(out: Path) -> Path:
    """A whole AVI whose headers (``avih`` total frames, the stream's ``strh`` length) claim
    twice the frames it holds."""
    data = bytearray(write_video(out.with_suffix(".tmp.avi"), _noise(FRAMES, 2)).read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    assert struct.unpack_from("<I", data, avih + 24) == (FRAMES,)  # dwTotalFrames
    assert struct.unpack_from("<I", data, strh + 40) == (FRAMES,)  # dwLength
    struct.pack_into("<I", data, avih + 24, 2 * FRAMES)
    struct.pack_into("<I", data, strh + 40, 2 * FRAMES)
    out.write_bytes(bytes(data))
    out.with_suffix(".tmp.avi").unlink()
    return out


def corrupt_in_the_middle(path: Path) -> Path:
    """A :data:`DAMAGED_FRAMES`-frame H.264 MP4 with a key frame every 4 frames whose middle
    frame is garbage (its NAL length field says 2 GiB): its first and last frames decode, so
    probing passes, and a clip over the middle fails, as a file damaged on disk does."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        s.options = {"x264-params": "keyint=4:min-keyint=4:scenecut=0:bframes=0"}
        for f in _noise(DAMAGED_FRAMES, 3):
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, "rgb24")))
        c.mux(s.encode())
    with av.open(str(path)) as c:
        offsets = [p.pos for p in c.demux(c.streams.video[0]) if p.size]
    data = bytearray(path.read_bytes())
    middle = offsets[DAMAGED_FRAMES // 2]
    data[middle : middle + 4] = b"\x7f\xff\xff\xff"
    path.write_bytes(bytes(data))
    return path


@dataclass
class Corpus:
    """``good``: videos that must be kept (one in a folder whose name has spaces and non-ASCII
    letters); ``broken``: path -> what its quarantine reason must say; ``manifest``: all of
    them, good ones in both splits."""

    good: list[str]
    broken: dict[str, str]
    manifest: Path


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    root = tmp_path / "set"
    good = [write_video(root / f"good{i}.mp4", _noise(FRAMES, 10 + i)) for i in range(4)]
    good.append(write_video(root / "vidéos d'été" / "clip ñ 1.mp4", _noise(FRAMES, 20)))
    whole = write_video(tmp_path / "whole.mp4", _noise(FRAMES, 30))  # index (moov) at the end
    whole_avi = write_video(tmp_path / "whole.avi", _noise(FRAMES, 31))
    streamed = _faststart(tmp_path / "streamed.mp4")
    (root / "zero.mp4").touch()
    (root / "noise.mp4").write_bytes(np.random.default_rng(4).bytes(4096))
    still = write_video(root / "still.mp4", _noise(1, 5))
    cut_open = "cannot open: truncated (the container runs to byte"
    broken = {
        root / "zero.mp4": "empty file (0 bytes)",
        root / "missing.mp4": "file not found",
        root / "noise.mp4": "cannot open: not a video (its first bytes are no MP4, AVI or "
        "Matroska header)",
        still: "a single frame: a still image",
        _lying_avi(root / "lies.avi"): f"frame count lies: the container declares {2 * FRAMES} "
        f"frames, decord decodes {FRAMES}",
        # decord opens a cut AVI as a shorter video; its header still counts every frame.
        _cut(whole_avi, root / "cut50.avi", 0.5): f"truncated: the container declares {FRAMES} "
        "frames, decord decodes",
        _cut(streamed, root / "streamed_cut60.mp4", 0.6): cut_open,
    }  # fmt: skip
    for keep in (0.02, 0.5, 0.95):  # in the header, mid-frames, just before the end
        broken[_cut(whole, root / f"cut{round(keep * 100)}.mp4", keep)] = cut_open
    rows = [VideoRecord(str(p), f"a{i % 2}", f"p{i % 2}", "test" if i in (1, 4) else "train")
            for i, p in enumerate(good)]  # fmt: skip
    rows += [VideoRecord(str(p), "a0", "p0", "train") for p in broken]
    return Corpus([str(p) for p in good], {str(p): r for p, r in broken.items()},
                  write_manifest(rows, root / "manifest.csv"))  # fmt: skip


def _without_dac_override() -> None:
    """In a child before exec: drop the capabilities that let root read any file
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from its bounding set, so the child, root or not,
    meets file permissions as anyone does."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _privar(*args: str, unprivileged: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([PRIVAR, *args], capture_output=True, text=True, timeout=120,
                          preexec_fn=_without_dac_override if unprivileged else None)  # fmt: skip


def test_data_check_quarantines_each_broken_video(corpus: Corpus, tmp_path: Path) -> None:
    q = tmp_path / "q.csv"
    p = _privar("data", "check", str(corpus.manifest), "--quarantine", str(q), "--timeout", "20")
    assert p.returncode == 0, p.stderr  # quarantining is the check's work, not a failure
    total = len(corpus.good) + len(corpus.broken)
    assert (f"{total} videos, {len(corpus.good)} decodable, {len(corpus.broken)} quarantined"
            in p.stdout), p.stdout  # fmt: skip
    said = {q.path: q.reason for q in read_quarantine(q)}
    assert sorted(said) == sorted(corpus.broken)  # no good video among them, spaces or not
    for path, reason in corpus.broken.items():
        assert said[path].startswith(reason), (path, said[path])
        assert f"quarantined: {path}: {said[path]}" in p.stdout
    assert p.stdout.count("  quarantined: ") == len(corpus.broken)


def test_an_unreadable_file_is_quarantined(tmp_path: Path) -> None:
    root = tmp_path / "set"
    rows = [VideoRecord(str(write_video(root / f"v{i}.mp4", _noise(FRAMES, i))), "a", "p", split)
            for i, split in enumerate(("train", "test"))]  # fmt: skip
    locked = write_video(root / "locked.mp4", _noise(FRAMES, 9))
    locked.chmod(0)
    try:
        opened = subprocess.run([sys.executable, "-c", f"open({str(locked)!r}, 'rb')"],
                                preexec_fn=_without_dac_override, capture_output=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:  # a sandbox that keeps capabilities
        pytest.skip(f"cannot make a file unreadable to a child process here: {e}")
    if opened.returncode == 0:
        pytest.skip("this user reads a file of mode 000 even without CAP_DAC_OVERRIDE")
    manifest = write_manifest([*rows, VideoRecord(str(locked), "a", "p", "train")],
                              root / "manifest.csv")  # fmt: skip
    p = _privar("data", "check", str(manifest), unprivileged=True)
    assert p.returncode == 0, p.stderr
    assert f"quarantined: {locked}: cannot read: permission denied" in p.stdout, p.stdout
    assert "3 videos, 2 decodable, 1 quarantined" in p.stdout


def test_a_study_quarantines_the_corpus_and_goes_on(ray_local, corpus: Corpus) -> None:
    data = open_study_data(DataConfig(adapter="manifest", root=str(corpus.manifest), clip_len=8,
                                      probe_timeout_s=20))  # fmt: skip
    assert sorted(r.path for r in data.records) == sorted(corpus.good)
    said = {q.path: q.reason for q in data.quarantined}
    assert sorted(said) == sorted(corpus.broken)
    assert all(said[p].startswith(r) for p, r in corpus.broken.items()), said
    data.prepare()
    seen = [int(v) for b in data.stream("train", train=True, batch_size=4) for v in b.video]
    assert sorted(seen) == data.usable("train") and len(seen) == 3


def test_data_check_and_a_study_stop_when_a_split_is_left_empty(corpus: Corpus) -> None:
    """Every evaluation video broken: the check says so (exit code 1) and a study stops before
    any compute, with one line."""
    for path in corpus.good:
        if "clip ñ" in path or path.endswith("good1.mp4"):  # the two test videos
            Path(path).write_bytes(b"")
    p = _privar("data", "check", str(corpus.manifest))
    assert p.returncode == 1, p.stdout + p.stderr
    assert ("unusable: no video in split 'val' or 'test', which a study evaluates on"
            in p.stdout)  # fmt: skip
    with pytest.raises(UserError) as e:
        open_study_data(DataConfig(adapter="manifest", root=str(corpus.manifest)))
    message = str(e.value)
    assert "\n" not in message
    total = len(corpus.good) + len(corpus.broken)
    assert message == (f"{corpus.manifest}: no video in split 'val' or 'test', which a study "
                       f"evaluates on, once {len(corpus.broken) + 2} of {total} videos are "
                       f"quarantined as broken")  # fmt: skip


@ray.remote(max_retries=0)
def _epoch_then_die(data: StudyData) -> None:
    """A trial's or farm job's use of the data, in a Ray worker: stream one epoch (the copy of
    ``data`` here quarantines what fails to decode), then die without returning anything."""
    for _ in data.stream("train", train=False, batch_size=2):
        pass
    os._exit(1)


def test_a_video_quarantined_in_a_worker_reaches_the_driver(ray_local, tmp_path: Path) -> None:
    rows = [VideoRecord(str(write_video(tmp_path / f"v{i}.mp4", _noise(FRAMES, i))), "a", "p",
                        "train" if i < 3 else "test") for i in range(4)]  # fmt: skip
    bad = corrupt_in_the_middle(tmp_path / "damaged.mp4")
    probed = probe_records([*rows, VideoRecord(str(bad), "a", "p", "train")], timeout_s=20)
    assert not probed.quarantined  # its first and last frames decode
    # No clip cache: the worker decodes the files itself (Ray Data tasks), as a trial does
    # when the data is over the cache budget. The damaged video's centre clip: frames 198-201.
    data = StudyData(probed.records, ClipSpec(clip_len=4, stride=1, size=(32, 32)))
    data.share_quarantine()
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(_epoch_then_die.remote(data))
    assert data.quarantined == []  # the driver's own copy decoded nothing
    [q] = data.gather_quarantine()
    assert q.path == str(bad)
    # decord words the failure two ways for the same damage (a rejected packet, or its own
    # `Check failed: run_.load()` when a decode thread gives up): the reason names the frame.
    assert re.fullmatch(r"cannot decode frame \d+: .+", q.reason), q.reason
    assert data.quarantined == [q] and data.gather_quarantine() == []
    bad_id = [r.path for r in data.records].index(str(bad))
    assert bad_id not in data.usable("train")  # the next trial or farm job skips it


@pytest.mark.slow  # a whole (one-trial) study
def test_a_study_counts_and_lists_what_its_trials_quarantined(
    ray_local, mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [VideoRecord(str(write_video(tmp_path / f"v{i}.mp4", _noise(FRAMES, i))), f"a{i % 2}",
                        f"p{i % 2}", "train" if i < 4 else "test") for i in range(6)]  # fmt: skip
    bad = corrupt_in_the_middle(tmp_path / "damaged.mp4")
    manifest = write_manifest([*rows, VideoRecord(str(bad), "a0", "p0", "test")],
                              tmp_path / "manifest.csv")  # fmt: skip
    study = tmp_path / "damaged.yaml"
    # No clip cache: the trial decodes the files itself, and fails on the damaged video's centre
    # clip (frames 196 to 203) when it evaluates.
    study.write_text(tiny_study("damaged", manifest, tmp_path / "out", {
        "data.adapter": "manifest", "data.options": {},
        "data.cache_budget_gb": 0, "farm.enabled": False, "search.num_trials": 1,
        "search.concurrency": 1, "resources.data_cpus": 1}))  # fmt: skip
    monkeypatch.chdir(tmp_path)  # whatever the study writes beside it
    lines: list[str] = []
    assert run_study(str(study), tracking_uri=mlflow_server, say=lines.append) == 0, lines
    said = [line for line in lines if "quarantined" in line]
    assert said[0].startswith("  data: 7 videos, 0 quarantined")  # the probe passed it
    assert f"  quarantined in the search: {bad}: cannot decode frame" in said[1], lines
    tracker = Tracker(mlflow_server)
    [run] = tracker.study_runs("damaged")
    assert run.data.metrics["quarantined"] == 1
