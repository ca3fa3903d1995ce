"""The dataset handle: one study's videos, its clip cache, and its splits as clip streams.

Decoding happens once per study: :meth:`StudyData.prepare` decodes every video into the clip
cache (:mod:`privar.data.cache`) when the cache fits its size budget; later trials and the
adversary farm cut their clips from the memory-mapped cache in their own process. A dataset over
the budget is decoded again each epoch. Either way :meth:`StudyData.stream` yields batches of
uint8 clips (B, C, T, H, W) with their labels (how: :mod:`privar.data.stream`).

A video that fails to decode (probing passed, a later frame did not) is quarantined and
counted, and the stream goes on without it. Trials and farm jobs quarantine in their own copy of
the :class:`StudyData`; once the driver calls :meth:`StudyData.share_quarantine`, every copy also
reports each video it quarantines, at once, to a small actor on the driver's node (the
*ledger*), where :meth:`StudyData.gather_quarantine` collects them: a job that dies after
quarantining a video has already told the driver.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from privar.data.cache import ClipCache, cache_bytes, cache_key, create_cache, mark_complete
from privar.data.manifest import Quarantined, VideoRecord
from privar.data.sampling import ClipSpec
from privar.data.stream import ClipStream, decode_here, decode_with_ray_data, node_cpus
from privar.errors import UserError

DEFAULT_BUDGET_BYTES = 8 * 2**30


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
    ledger: ray.actor.ActorHandle | None = None

    @property
    def cache_fits(self) -> bool:
        return cache_bytes(self.records, self.spec.size) <= self.budget_bytes

    def quarantine(self, q: Quarantined) -> None:
        """Skip ``q.path`` from now on; with a ledger, tell the driver before going on."""
        if q not in self.quarantined:
            self.quarantined.append(q)
            if self.ledger is not None:
                ray.get(self.ledger.add.remote(q))

    def share_quarantine(self) -> None:
        """On the driver (Ray started), before the data goes to trials and farm jobs: start the
        ledger that every copy of this data reports its quarantined videos to. It lives on this
        node, so it lasts as long as the driver, whatever happens to the workers."""
        here = ray.get_runtime_context().get_node_id()
        self.ledger = _Ledger.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)
        ).remote()

    def gather_quarantine(self) -> list[Quarantined]:
        """On the driver: add what the workers quarantined (:meth:`share_quarantine`) to
        ``quarantined``; returns the videos new to this copy, in the order they were found."""
        if self.ledger is None:
            return []
        new = [q for q in ray.get(self.ledger.items.remote()) if q not in self.quarantined]
        self.quarantined.extend(new)
        return new

    def short(self) -> list[VideoRecord]:
        """The videos with fewer frames than a clip needs (:attr:`ClipSpec.frames_needed`):
        their clips repeat their last frame, as the papers' protocol does."""
        need = self.spec.frames_needed
        return [r for r in self.records if r.num_frames and r.num_frames < need]

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
                records, size = self.records, self.spec.size
                create_cache(folder, records, size, key)
                if node_cpus() >= 1:
                    failed = decode_with_ray_data(records, folder, size, self.decoder, batch_size)
                else:
                    failed = decode_here(records, folder, size, self.decoder)
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
                _seal(folder, decode_here(self.records, folder, self.spec.size, self.decoder))
        self._use_cache(folder)

    def _use_cache(self, folder: Path) -> None:
        for q in json.loads((folder / "quarantine.json").read_text()):
            self.quarantine(Quarantined(**q))
        self.cache = ClipCache(folder)

    def stream(
        self, split: str, train: bool, epoch: int = 0, batch_size: int = 8,
        tasks_batch: int | None = None,
    ) -> ClipStream:  # fmt: skip
        """Clips of ``split``; ``train`` picks random offsets (seeded by seed, epoch, video) and
        shuffles the order, else centre clips in manifest order. Without a cache, each Ray Data
        task decodes ``tasks_batch`` videos (``None``: :func:`privar.data.stream.videos_per_task`
        decides)."""
        ids = self.usable(split)
        if train:
            ids = list(np.random.default_rng((self.seed, epoch)).permutation(ids))
        return ClipStream(self, ids, train, epoch, batch_size, tasks_batch)


def eval_split(data: StudyData) -> str:
    """The split that evaluates: ``val`` where the dataset has usable clips in one, else
    ``test``."""
    return "val" if data.usable("val") else "test"


def split_clips(data: StudyData, split: str, train: bool, epoch: int,
                batch_size: int) -> ClipStream:  # fmt: skip
    """The clips of ``split`` for a training or evaluation loop (:meth:`StudyData.stream`). A
    split with no usable clip is an error, not an epoch of nothing: a loop would otherwise
    report a loss of 0 and accuracies of nothing."""
    if not data.usable(split):
        raise UserError(
            f"no usable clips in the {split} split ({len(data.quarantined)} videos quarantined)"
        )
    return data.stream(split, train=train, epoch=epoch, batch_size=batch_size)


@ray.remote(num_cpus=0)
class _Ledger:
    """The videos every copy of a study's data quarantined, in the order they were reported."""

    def __init__(self) -> None:
        self._items: list[Quarantined] = []

    def add(self, q: Quarantined) -> None:
        if q not in self._items:
            self._items.append(q)

    def items(self) -> list[Quarantined]:
        return self._items


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
