"""Ray Data: decode clips on CPU workers and stream uint8 batches to the training workers.

Decoding happens once per study: :meth:`StudyData.prepare` decodes every video into the clip
cache (:mod:`privar.data.cache`) with Ray Data tasks when the cache fits its size budget; later
trials and the adversary farm cut their clips from the memory-mapped cache in their own
process. A dataset over the budget is decoded again each epoch by Ray Data tasks, straight from
the video files. Either way a stream yields
:class:`ClipBatch` es of uint8 clips (B, C, T, H, W) with their labels.

A video that fails to decode here (probing passed, a later frame did not) is quarantined and
counted, and the stream goes on without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ray.data.collate_fn import NumpyBatchCollateFn

from privar.data.cache import (
    ClipCache,
    cache_bytes,
    cache_key,
    create_cache,
    mark_complete,
    write_video,
)
from privar.data.decoder import create_decoder
from privar.data.manifest import Quarantined, VideoRecord, label_index
from privar.data.sampling import ClipSpec, clip_rng
from privar.errors import BrokenVideo

DEFAULT_BUDGET_BYTES = 8 * 2**30


@dataclass
class ClipBatch:
    """One batch: ``clip`` uint8 (B, C, T, H, W) RGB; ``action``, ``privacy``, ``video``
    int64 (B,) (class indices, and the video's index in the study's record list)."""

    clip: torch.Tensor
    action: torch.Tensor
    privacy: torch.Tensor
    video: torch.Tensor


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
    """Ray Data task: one clip per row, from the cache or decoded from the file. A row whose
    video fails to decode gets ``ok = False`` and a zero clip; the consumer drops it."""
    dec = None if cache is not None else create_decoder(decoder)
    n = len(batch["video"])
    t, (h, w) = spec.num_frames, spec.size
    clips = np.zeros((n, 3, t, h, w), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)
    reasons = np.full(n, "", dtype=object)
    for j in range(n):
        video = int(batch["video"][j])
        idx = spec.indices(int(batch["num_frames"][j]), train, clip_rng(seed, epoch, video))
        try:
            frames = (
                cache.clip(video, idx) if cache else dec.read(str(batch["path"][j]), idx, spec.size)
            )
        except BrokenVideo as e:
            ok[j], reasons[j] = False, e.reason
            continue
        clips[j] = frames.transpose(3, 0, 1, 2)  # (T, H, W, C) -> (C, T, H, W)
    return {
        "clip": clips,
        "action": batch["action"],
        "privacy": batch["privacy"],
        "video": batch["video"],
        "ok": ok,
        "reason": reasons,
    }


@dataclass
class StudyData:
    """The videos of one study and how to serve them as clips.

    ``records`` are probed, decodable-as-far-as-probing-knows videos (the manifest minus the
    probe's quarantine). ``cache_root`` holds clip caches, one folder per cache key; ``None``
    always stream-decodes.
    """

    records: list[VideoRecord]
    spec: ClipSpec
    cache_root: Path | None = None
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    decoder: str = "decord"
    seed: int = 0
    quarantined: list[Quarantined] = field(default_factory=list)
    cache: ClipCache | None = None

    @property
    def cache_fits(self) -> bool:
        return cache_bytes(self.records, self.spec.size) <= self.budget_bytes

    def quarantine(self, q: Quarantined) -> None:
        if q not in self.quarantined:
            self.quarantined.append(q)

    def usable(self, split: str) -> list[int]:
        bad = {q.path for q in self.quarantined}
        return [i for i, r in enumerate(self.records) if r.split == split and r.path not in bad]

    def prepare(self, batch_size: int = 4) -> ClipCache | None:
        """Decode every video into the clip cache once (a complete cache with the same key is
        reused). Returns the cache, or ``None`` when the data is over budget or no cache root is
        set (then every epoch decodes). Ray Data tasks decode, all on this node: the cache
        folder may be this node's own disk, which another node's tasks would not write to. On a
        node that gives Ray no CPU (a head kept free of trials) this process decodes."""
        if self.cache_root is None or not self.cache_fits:
            return None
        key = cache_key(self.records, self.spec.size, self.decoder)
        folder = Path(self.cache_root) / key
        with _cache_lock(folder):
            if not ClipCache.is_complete(folder, key):
                create_cache(folder, self.records, self.spec.size, key)
                failed = (self._decode_with_ray_data(folder, batch_size) if _node_cpus() >= 1
                          else self._decode_here(folder))  # fmt: skip
                _seal(folder, failed)
        self._use_cache(folder)
        return self.cache

    def ensure_cache(self) -> None:
        """In a trial or farm job, on whatever node it runs: make sure this node can read the
        clip cache :meth:`prepare` made. With a node-local ``cache_dir`` another node has none
        yet, and decodes its own copy in this process, once: a lock keeps concurrent jobs on one
        node from decoding twice. With shared storage the driver's copy is found complete."""
        if self.cache is None:
            return
        folder, key = self.cache.folder, self.cache.key
        with _cache_lock(folder):
            if not ClipCache.is_complete(folder, key):
                create_cache(folder, self.records, self.spec.size, key)
                _seal(folder, self._decode_here(folder))
        self._use_cache(folder)

    def _decode_here(self, folder: Path) -> list[dict[str, str]]:
        """Every video into the cache, in this process; returns the ones that failed."""
        rows = _rows(self.records, range(len(self.records)))
        cols = {k: np.array([r[k] for r in rows]) for k in ("video", "path", "num_frames")}
        out = _decode_into_cache(cols, str(folder), self.spec.size, self.decoder)
        return [{"path": self.records[int(v)].path, "reason": str(r)}
                for v, ok, r in zip(out["video"], out["ok"], out["reason"], strict=True)
                if not ok]  # fmt: skip

    def _decode_with_ray_data(self, folder: Path, batch_size: int) -> list[dict[str, str]]:
        import ray
        import ray.data

        # Ray's default label on every node pins the tasks here.
        here = {"ray.io/node-id": ray.get_runtime_context().get_node_id()}
        ds = ray.data.from_items(_rows(self.records, range(len(self.records))))
        ds = ds.map_batches(
            _decode_into_cache,
            batch_size=batch_size,
            num_cpus=1,
            batch_format="numpy",
            fn_kwargs={"folder": str(folder), "size": self.spec.size, "decoder": self.decoder},
            label_selector=here,
        )
        return [{"path": self.records[row["video"]].path, "reason": row["reason"]}
                for row in ds.iter_rows() if not row["ok"]]  # fmt: skip

    def _use_cache(self, folder: Path) -> None:
        for q in json.loads((folder / "quarantine.json").read_text()):
            self.quarantine(Quarantined(**q))
        self.cache = ClipCache(folder)

    def stream(
        self, split: str, train: bool, epoch: int = 0, batch_size: int = 8, tasks_batch: int = 4
    ) -> ClipStream:
        """Clips of ``split``; ``train`` picks random offsets (seeded by seed, epoch, video) and
        shuffles the order, else centre clips in manifest order."""
        ids = self.usable(split)
        if train:
            ids = list(np.random.default_rng((self.seed, epoch)).permutation(ids))
        return ClipStream(self, ids, train, epoch, batch_size, tasks_batch)


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
        tasks_batch: int,
    ) -> None:
        self.data, self.ids, self.train, self.epoch = data, list(ids), train, epoch
        self.batch_size, self.tasks_batch = batch_size, tasks_batch

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

        _schedule_in_current_placement_group()
        d = self.data
        ds = ray.data.from_items(_rows(d.records, self.ids))
        ds = ds.map_batches(
            _load_clips,
            batch_size=self.tasks_batch,
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
        yield from ds.iter_torch_batches(
            batch_size=self.batch_size, drop_last=False, collate_fn=_Collate()
        )


def _node_cpus() -> float:
    """CPUs this process's Ray node gives to tasks."""
    import ray

    here = ray.get_runtime_context().get_node_id()
    return next((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["NodeID"] == here), 0.0)


@contextlib.contextmanager
def _cache_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the cache folder ``folder`` (beside it, so it survives the folder's
    rebuild), held by one process of this node (or of the cluster, on shared storage)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _seal(folder: Path, failed: list[dict[str, str]]) -> None:
    """Mark a filled cache complete; it remembers its broken videos, so a later trial that
    reuses it skips them."""
    (folder / "quarantine.json").write_text(json.dumps(failed))
    mark_complete(folder)


def _schedule_in_current_placement_group() -> None:
    """Inside a search trial, run this process's Ray Data tasks in the trial's placement group,
    on the CPUs it reserved for them (``resources.data_cpus``). Ray Data otherwise schedules its
    tasks outside any placement group, where concurrent trials may have left no CPU free: the
    stream then waits forever. (Ray 2.60 deprecates this setting, to be removed after January
    2027, without a replacement for tasks started inside a placement group yet.)"""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pg = ray.util.get_current_placement_group() if ray.is_initialized() else None
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
        cols = (torch.from_numpy(np.ascontiguousarray(b[k][ok])) for k in _COLUMNS)
        return ClipBatch(*cols), failed


_COLUMNS = ("clip", "action", "privacy", "video")
