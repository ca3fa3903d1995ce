"""Ray Data streams on a real local Ray: clips from files and from the clip cache agree, the
cache is built once, and a video that breaks after probing is quarantined while the rest flow."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import frame_levels
from privar.data.dataset import StudyData
from privar.data.manifest import VideoRecord, label_index
from privar.data.probe import probe_records
from privar.data.sampling import ClipSpec
from privar.data.stream import _Collate

SPEC = ClipSpec(clip_len=4, stride=2, size=(16, 24))


@pytest.fixture
def records(make_video) -> list[VideoRecord]:
    rows = []
    for i in range(10):
        path = make_video(f"v{i}.mp4", num_frames=10 + i)  # frame j shows grey level j
        split = "train" if i < 6 else "test"
        rows.append(VideoRecord(path, f"action{i % 3}", f"actor{i % 2}", split))
    return probe_records(rows).records


def _collect(data: StudyData, split: str, train: bool, epoch: int = 0) -> dict[int, tuple]:
    out = {}
    for b in data.stream(split, train=train, epoch=epoch, batch_size=4):
        assert b.clip.dtype == torch.uint8 and b.clip.shape[1:] == (3, 4, 16, 24)
        # The frames as decoded, (T, H, W, C) in memory: nothing is transposed on the host.
        assert b.clip.is_contiguous(memory_format=torch.channels_last_3d)
        for clip, a, p, v in zip(b.clip, b.action, b.privacy, b.video, strict=True):
            out[int(v)] = (clip.numpy(), int(a), int(p))
    return out


def test_cache_and_files_give_the_same_clips(ray_local, records, tmp_path: Path) -> None:
    cached = StudyData(records, SPEC, cache_root=tmp_path / "cache", seed=3)
    direct = StudyData(records, SPEC, cache_root=tmp_path / "cache2", budget_bytes=0, seed=3)
    assert cached.prepare() is not None
    assert direct.prepare() is None  # over budget: decode every epoch
    actions = label_index(records, "action")
    for split, train in (("train", True), ("test", False)):
        a, b = _collect(cached, split, train), _collect(direct, split, train)
        assert sorted(a) == sorted(b) == [i for i, r in enumerate(records) if r.split == split]
        for v in a:
            assert np.array_equal(a[v][0], b[v][0])
            assert a[v][1] == actions[records[v].action]
    # Test time: the centre clip. Video 6 has 16 frames, span 7 -> start 4 -> frames 4, 6, 8, 10.
    test = _collect(cached, "test", train=False)
    assert frame_levels(test[6][0].transpose(1, 2, 3, 0)) == [4, 6, 8, 10]


def test_train_offsets_vary_by_epoch_and_repeat_by_seed(ray_local, records, tmp_path) -> None:
    data = StudyData(records, SPEC, cache_root=tmp_path / "cache", seed=0)
    data.prepare()
    starts = {
        e: {v: frame_levels(c.transpose(1, 2, 3, 0))[0] for v, (c, _, _) in
            _collect(data, "train", True, e).items()}
        for e in (0, 1, 0)
    }  # fmt: skip
    again = {v: frame_levels(c.transpose(1, 2, 3, 0))[0]
             for v, (c, _, _) in _collect(data, "train", True, 0).items()}  # fmt: skip
    assert again == starts[0]
    assert starts[0] != starts[1]


def test_cache_is_built_once(ray_local, records, tmp_path: Path) -> None:
    first = StudyData(records, SPEC, cache_root=tmp_path / "cache").prepare()
    stamp = (first.folder / "frames.u8").stat().st_mtime_ns
    second = StudyData(records, SPEC, cache_root=tmp_path / "cache").prepare()
    assert second.folder == first.folder
    assert (second.folder / "frames.u8").stat().st_mtime_ns == stamp


def test_a_node_without_the_cache_decodes_its_own_copy_once(ray_local, records,
                                                            tmp_path: Path) -> None:  # fmt: skip
    """What a trial on another node sees with a node-local cache_dir: the driver's cache
    object, but no files. It decodes the same clips here, once; a second job reuses them."""
    data = StudyData(records, SPEC, cache_root=tmp_path / "cache", seed=1)
    folder = data.prepare().folder
    want = _collect(data, "test", train=False)
    shutil.rmtree(folder)  # the other node's disk
    data.ensure_cache()
    assert (folder / "COMPLETE").exists() and (folder / "quarantine.json").exists()
    got = _collect(data, "test", train=False)
    assert sorted(got) == sorted(want)
    assert all(np.array_equal(got[v][0], want[v][0]) for v in want)
    stamp = (folder / "frames.u8").stat().st_mtime_ns
    data.ensure_cache()
    assert (folder / "frames.u8").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("cached", [True, False])
def test_video_broken_after_probing_is_quarantined(ray_local, records, tmp_path, cached) -> None:
    broken = records[2]
    Path(broken.path).write_bytes(b"\0" * 64)  # the file changed on disk after probing
    budget = 2**30 if cached else 0
    data = StudyData(records, SPEC, cache_root=tmp_path / "cache", budget_bytes=budget)
    data.prepare()
    got = _collect(data, "train", train=True)
    assert sorted(got) == [0, 1, 3, 4, 5]
    assert [q.path for q in data.quarantined] == [broken.path]
    assert data.quarantined[0].reason.startswith("cannot open")
    if cached:  # the cache remembers: a later trial skips the video without decoding it
        later = StudyData(records, SPEC, cache_root=tmp_path / "cache")
        later.prepare()
        assert [q.path for q in later.quarantined] == [broken.path]
        assert 2 not in later.usable("train")


def test_a_pass_is_split_into_a_few_bounded_tasks() -> None:
    from privar.data.stream import videos_per_task

    assert videos_per_task(240) == 30  # eight tasks
    assert videos_per_task(5) == 1 and videos_per_task(0) == 1
    assert videos_per_task(10_000) == 64  # the cap, not eight huge blocks
    assert videos_per_task(100, tasks=3, most=1000) == 34


def test_a_batch_shares_its_arrays_only_when_they_are_its_own() -> None:
    """The collate hands a task's own clips to torch as they are, copies a read-only block
    (Ray Data's, straight from its object store), and drops the rows that failed to decode."""
    clips = np.arange(2 * 4 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 4, 2, 2, 3)  # (B, T, H, W, C)
    rows = {"clip": clips, "action": np.array([0, 1]), "privacy": np.array([1, 0]),
            "video": np.array([5, 6]), "ok": np.array([True, True]),
            "reason": np.array(["", ""], dtype=object)}  # fmt: skip
    batch, failed = _Collate()(rows)
    assert failed == []
    assert torch.equal(batch.clip, torch.from_numpy(clips).permute(0, 4, 1, 2, 3))
    assert np.shares_memory(batch.clip.numpy(), clips)

    clips.flags.writeable = False
    batch, _ = _Collate()(rows)
    assert not np.shares_memory(batch.clip.numpy(), clips)
    assert torch.equal(batch.clip, torch.from_numpy(clips.copy()).permute(0, 4, 1, 2, 3))

    rows["ok"], rows["reason"] = np.array([True, False]), np.array(["", "bad frame"], dtype=object)
    batch, failed = _Collate()(rows)
    assert failed == [(6, "bad frame")] and batch.video.tolist() == [5]
    assert torch.equal(batch.clip[0], torch.from_numpy(clips[0].copy()).permute(3, 0, 1, 2))
