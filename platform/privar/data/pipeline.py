"""From a study's data section to a :class:`StudyData`: scan, probe, quarantine, cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from privar.data.adapters import scan_dataset
from privar.data.probe import probe_records
from privar.data.sampling import ClipSpec
from privar.data.stream import StudyData
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
    with a timeout), and set up the clip stream. Broken videos go to ``quarantined``."""
    records = scan_dataset(cfg.adapter, cfg.root, **cfg.options)
    probed = probe_records(
        records, timeout_s=cfg.probe_timeout_s, decoder_name=cfg.decoder, progress=progress
    )
    if not probed.records:
        raise UserError(
            f"{cfg.root}: no video could be decoded ({len(probed.quarantined)} quarantined)"
        )
    cache_root = Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.root) / ".privar-cache"
    return StudyData(
        records=probed.records,
        spec=clip_spec(cfg),
        cache_root=cache_root,
        budget_bytes=int(cfg.cache_budget_gb * 2**30),
        decoder=cfg.decoder,
        seed=seed,
        quarantined=list(probed.quarantined),
    )
