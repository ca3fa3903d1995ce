"""Ray Data plumbing: the tasks that decode videos and cut clips, and the stream of clip batches.

:class:`ClipStream` serves one split of a :class:`~privar.data.dataset.StudyData` (made by its
``stream``): clips cut in this process from the clip cache, or decoded from the files by Ray Data
tasks on the CPU workers, as :class:`ClipBatch` es of uint8 clips (B, C, T, H, W). The cache is
filled by :func:`decode_with_ray_data` (Ray Data tasks on this node) or :func:`decode_here`. A
video that fails to decode is reported back, with its reason, for the quarantine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from ray.data.collate_fn import NumpyBatchCollateFn

from privar.data.cache import ClipCache, write_video
from privar.data.decoder import create_decoder
from privar.data.manifest import Quarantined, VideoRecord, label_index
from privar.data.sampling import ClipSpec, clip_rng
from privar.errors import BrokenVideo

if TYPE_CHECKING:
    import ray.data
    from ray.util.placement_group import PlacementGroup

    from privar.data.dataset import StudyData


@dataclass
class ClipBatch:
    """One batch: ``clip`` uint8 (B, C, T, H, W) RGB, channels-last in memory (a view of the
    (B, T, H, W, C) frames as decoded); ``action``, ``privacy``, ``video`` int64 (B,) (class
    indices, and the video's index in the study's record list)."""

    clip: torch.Tensor
    action: torch.Tensor
    privacy: torch.Tensor
    video: torch.Tensor


class ClipStream:
    """Iterates :class:`ClipBatch` es, from the clip cache or decoded by Ray Data; quarantines
    videos that fail to decode."""

    def __init__(
        self,
        data: StudyData,
        ids: Sequence[int],
        train: bool,
        epoch: int,
        batch_size: int,
        tasks_batch: int | None,
    ) -> None:
        self.data, self.ids, self.train, self.epoch = data, list(ids), train, epoch
        self.batch_size, self.tasks_batch = batch_size, tasks_batch
        # Ray's task context (its placement group among it) is the creating thread's; the
        # batches may be pulled from another (privar.train.prefetch), where it reads as none.
        self.placement_group = _current_placement_group()

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[ClipBatch]:
        batches = self._from_cache() if self.data.cache is not None else self._from_ray_data()
        for batch, failed in batches:
            for v, reason in failed:
                self.data.quarantine(Quarantined(self.data.records[v].path, reason))
            if batch is not None:
                yield batch

    def _from_cache(self) -> Iterator[tuple[ClipBatch | None, list[tuple[int, str]]]]:
        """Clips cut in this process from the memory-mapped cache: nothing is decoded, so Ray
        Data tasks would only add a scheduling round trip per batch, and a trial would need
        spare CPUs for them besides its own."""
        d, collate = self.data, _Collate()
        rows = _rows(d.records, self.ids)  # label lookup once per epoch, not once per batch
        for i in range(0, len(rows), self.batch_size):
            chunk = rows[i : i + self.batch_size]
            cols = {k: np.array([r[k] for r in chunk]) for k in ("video", "num_frames", "action",
                                                                  "privacy")}  # fmt: skip
            yield collate(_load_clips(cols, d.spec, self.train, d.seed, self.epoch, d.cache,
                                      d.decoder))  # fmt: skip

    def _from_ray_data(self) -> Iterator[tuple[ClipBatch | None, list[tuple[int, str]]]]:
        """Clips decoded from the files by Ray Data tasks on the CPU workers, streamed."""
        import ray.data

        _schedule_in(self.placement_group)
        d = self.data
        per_task = self.tasks_batch or videos_per_task(len(self.ids))
        tasks = max(1, -(-len(self.ids) // per_task))
        # One input block per task: Ray Data then has no small blocks to gather into batches.
        ds = ray.data.from_items(_rows(d.records, self.ids), override_num_blocks=tasks)
        ds = ds.map_batches(
            _load_clips,
            batch_size=per_task,
            num_cpus=1,
            batch_format="numpy",
            fn_kwargs={
                "spec": d.spec,
                "train": self.train,
                "seed": d.seed,
                "epoch": self.epoch,
                "cache": d.cache,
                "decoder": d.decoder,
            },
        )
        (h, w), t = d.spec.size, d.spec.num_frames
        if len(self.ids) * 3 * t * h * w <= FULL_WIDTH_MAX_BYTES:  # the pass's clips, uint8
            _start_at_full_width(ds)
        yield from ds.iter_torch_batches(
            batch_size=self.batch_size, drop_last=False, collate_fn=_Collate()
        )


#: Bounds on the videos one Ray Data task decodes (:func:`videos_per_task`).
TASKS_PER_PASS, MOST_PER_TASK = 8, 64


def videos_per_task(n: int, tasks: int = TASKS_PER_PASS, most: int = MOST_PER_TASK) -> int:
    """How many of a pass's ``n`` videos one Ray Data task decodes: the pass split into
    ``tasks`` tasks, at most ``most`` videos each. Few large tasks amortise Ray's cost per task,
    about 7 ms of the driver's CPU each (measured on 2 CPUs, one pass over 240 videos of 64
    frames: 60 tasks of 4 kept 0.58-0.61 of raw decord per core, 8 tasks of 30 0.77-0.78); the
    cap bounds a task's output block (64 clips of 16 x 112 x 112 are 39 MB) and the wait for
    the first batch."""
    return max(1, min(most, -(-n // tasks)))


def decode_here(records: Sequence[VideoRecord], folder: Path, size: tuple[int, int],
                decoder: str) -> list[dict[str, str]]:  # fmt: skip
    """Every video into its cache slot in ``folder``, in this process; returns the ones that
    failed (``path``, ``reason``)."""
    rows = _rows(records, range(len(records)))
    cols = {k: np.array([r[k] for r in rows]) for k in ("video", "path", "num_frames")}
    out = _decode_into_cache(cols, str(folder), size, decoder)
    return [{"path": records[int(v)].path, "reason": str(r)}
            for v, ok, r in zip(out["video"], out["ok"], out["reason"], strict=True)
            if not ok]  # fmt: skip


def decode_with_ray_data(records: Sequence[VideoRecord], folder: Path, size: tuple[int, int],
                         decoder: str, batch_size: int) -> list[dict[str, str]]:  # fmt: skip
    """:func:`decode_here`, by Ray Data tasks of ``batch_size`` videos, all on this node: the
    folder may be this node's own disk, which another node's tasks would not write to."""
    import ray
    import ray.data

    # Ray's default label on every node pins the tasks here.
    here = {"ray.io/node-id": ray.get_runtime_context().get_node_id()}
    ds = ray.data.from_items(_rows(records, range(len(records))))
    ds = ds.map_batches(
        _decode_into_cache,
        batch_size=batch_size,
        num_cpus=1,
        batch_format="numpy",
        fn_kwargs={"folder": str(folder), "size": size, "decoder": decoder},
        label_selector=here,
    )
    _start_at_full_width(ds)
    return [{"path": records[row["video"]].path, "reason": row["reason"]}
            for row in ds.iter_rows() if not row["ok"]]  # fmt: skip


def node_cpus() -> float:
    """CPUs this process's Ray node gives to tasks."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    return next((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["NodeID"] == here), 0.0)


def _rows(records: Sequence[VideoRecord], ids: Sequence[int]) -> list[dict]:
    actions, privacy = label_index(records, "action"), label_index(records, "privacy")
    return [
        {
            "video": i,
            "path": records[i].path,
            "num_frames": records[i].num_frames,
            "action": actions[records[i].action],
            "privacy": privacy[records[i].privacy],
        }
        for i in ids
    ]


def _decode_into_cache(
    batch: dict[str, np.ndarray], folder: str, size: tuple[int, int], decoder: str
) -> dict[str, np.ndarray]:
    """Ray Data task: decode whole videos into their cache slots. Returns one small row per
    video (ok, reason); the frames never travel through the object store."""
    dec = create_decoder(decoder)
    ok, reasons = [], []
    for video, path, n in zip(batch["video"], batch["path"], batch["num_frames"], strict=True):
        try:
            write_video(folder, int(video), dec.read(str(path), list(range(int(n))), size))
            ok.append(True)
            reasons.append("")
        except BrokenVideo as e:
            ok.append(False)
            reasons.append(e.reason)
    return {"video": batch["video"], "ok": np.array(ok), "reason": np.array(reasons, dtype=object)}


def _load_clips(
    batch: dict[str, np.ndarray],
    spec: ClipSpec,
    train: bool,
    seed: int,
    epoch: int,
    cache: ClipCache | None,
    decoder: str,
) -> dict[str, np.ndarray]:
    """Ray Data task: one clip per row, from the cache or decoded from the file, uint8
    (T, H, W, C) as decoded; :class:`_Collate` views them as (C, T, H, W). They are never
    transposed on the host: a GPU's input is channels-last anyway, and on a CPU the training
    process makes its batch contiguous (:func:`privar.train.steps.to_input`). A row whose video
    fails to decode gets ``ok = False`` and a zero clip; the consumer drops it."""
    dec = None if cache is not None else create_decoder(decoder)
    n = len(batch["video"])
    t, (h, w) = spec.num_frames, spec.size
    clips = np.zeros((n, t, h, w, 3), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)
    reasons = np.full(n, "", dtype=object)
    for j in range(n):
        video = int(batch["video"][j])
        # Only a training clip draws its offset: a generator costs as much as cutting the clip.
        rng = clip_rng(seed, epoch, video) if train else None
        idx = spec.indices(int(batch["num_frames"][j]), train, rng)
        try:
            clips[j] = (
                cache.clip(video, idx) if cache else dec.read(str(batch["path"][j]), idx, spec.size)
            )
        except BrokenVideo as e:
            ok[j], reasons[j] = False, e.reason
    return {
        "clip": clips,
        "action": batch["action"],
        "privacy": batch["privacy"],
        "video": batch["video"],
        "ok": ok,
        "reason": reasons,
    }


#: A pass of clips up to this size (bytes, uint8) is decoded at full width from its start
#: (:func:`_start_at_full_width`); a larger one keeps Ray Data's memory backpressure.
FULL_WIDTH_MAX_BYTES = 1 << 30


def _start_at_full_width(ds: ray.data.Dataset) -> None:
    """Let ``ds`` run as many tasks at once as Ray has CPUs for, from its first second.

    Ray Data 2.60 budgets each operator's tasks out of the resources that a new execution
    learns from its autoscaling coordinator without waiting: the first answer is empty, and the
    executor keeps it for a second. Until then every budget is zero and only Ray Data's
    liveness rule starts tasks: one at a time, when none runs. A pass of a few hundred videos
    on 2 CPUs ends within that second, so it decoded serially in one worker. Without the
    budget, Ray core's CPU accounting (and the placement group of :func:`_schedule_in`) bounds
    the running tasks; what the budget also did, hold tasks back while finished blocks wait
    for the consumer, is lost, so a slow consumer lets a pass's clips wait in the object store.
    Hence only for outputs that stay small: the cache fill's rows, and passes of clips up to
    :data:`FULL_WIDTH_MAX_BYTES` (a longer pass hardly notices one slow second). Only this
    dataset's own copy of the context changes; Ray Data calls the switch historical, so a
    later Ray may drop it."""
    ds.context.op_resource_reservation_enabled = False


def _current_placement_group() -> PlacementGroup | None:
    """The placement group of the Ray task or actor this thread runs (``None``: none, or no
    Ray)."""
    import ray

    return ray.util.get_current_placement_group() if ray.is_initialized() else None


def _schedule_in(pg: PlacementGroup | None) -> None:
    """Inside a search trial or farm job (placement group ``pg``), run this process's Ray Data
    tasks in it, on the CPUs it reserved for them (``resources.data_cpus``). Ray Data otherwise
    schedules its tasks outside any placement group, where concurrent trials may have left no
    CPU free: the stream then waits forever. (Ray 2.60 deprecates this setting, to be removed
    after January 2027, without a replacement for tasks started inside a placement group yet.)"""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    if pg is not None:
        strategy = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
        ray.data.DataContext.get_current().scheduling_strategy = strategy


class _Collate(NumpyBatchCollateFn):
    """Numpy batch -> (ClipBatch of the rows that decoded, [(video, reason)] of those that did
    not). Our own collate because the reason is a string column, which torch cannot hold."""

    def __call__(self, b: dict[str, np.ndarray]) -> tuple[ClipBatch | None, list[tuple[int, str]]]:
        ok = b["ok"].astype(bool)
        failed = [(int(v), str(r)) for v, r in zip(b["video"][~ok], b["reason"][~ok], strict=True)]
        if not ok.any():
            return None, failed
        keep = slice(None) if ok.all() else ok  # a slice keeps the arrays; a mask copies them
        clip, action, privacy, video = (torch.from_numpy(_own(b[k][keep])) for k in _COLUMNS)
        # (B, T, H, W, C) frames -> the (B, C, T, H, W) view, channels-last in memory
        return ClipBatch(clip.permute(0, 4, 1, 2, 3), action, privacy, video), failed


_COLUMNS = ("clip", "action", "privacy", "video")


def _own(a: np.ndarray) -> np.ndarray:
    """``a`` as an array a tensor may share: a read-only one (a block Ray Data hands out
    straight from its object store) is copied, so no tensor writes into shared memory."""
    return np.ascontiguousarray(a) if a.flags.writeable else a.copy()
