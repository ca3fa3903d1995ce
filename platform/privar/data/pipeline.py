"""From a study's data section to a :class:`StudyData`: scan, probe, quarantine, cache."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from privar.data.adapters import scan_dataset
from privar.data.dataset import StudyData
from privar.data.manifest import split_problem
from privar.data.probe import probe_records
from privar.data.sampling import ClipSpec
from privar.errors import UserError
from privar.study import DataConfig


def clip_spec(cfg: DataConfig) -> ClipSpec:
    return ClipSpec(clip_len=cfg.clip_len, stride=cfg.stride, size=cfg.size, segments=cfg.segments)


def open_study_data(
    cfg: DataConfig,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> StudyData:
    """Scan the dataset with its adapter, probe the files not yet probed (in child processes,
    with a timeout), and set up the clip stream. Broken videos go to ``quarantined``; a
    :class:`UserError` when too few are left for the splits (:func:`split_problem`).

    Every path is made absolute here, against the working directory: Ray workers (Tune's
    trials among them) run in other directories."""
    root = Path(cfg.root).resolve()
    records = [dataclasses.replace(r, path=str(Path(r.path).resolve()))
               for r in scan_dataset(cfg.adapter, str(root), **cfg.options)]  # fmt: skip
    probed = probe_records(
        records, timeout_s=cfg.probe_timeout_s, decoder_name=cfg.decoder, progress=progress
    )
    problem = split_problem(probed.records)
    if problem:  # before any compute: a split the quarantine left without a video
        raise UserError(f"{cfg.root}: {problem}, once {len(probed.quarantined)} of "
                        f"{len(records)} videos are quarantined as broken")  # fmt: skip
    # By default the cache lives beside the videos (for a manifest adapter, beside its CSV).
    default = (root if root.is_dir() else root.parent) / ".privar-cache"
    cache_root = Path(cfg.cache_dir).resolve() if cfg.cache_dir else default
    return StudyData(
        records=probed.records,
        spec=clip_spec(cfg),
        cache_root=cache_root,
        budget_bytes=int(cfg.cache_budget_gb * 2**30),
        decoder=cfg.decoder,
        seed=seed,
        quarantined=list(probed.quarantined),
    )
