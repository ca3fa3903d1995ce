"""``privar run`` until the search lands: the study's whole data path, measured.

Scans and probes the dataset (generating the synthetic set when the study asks for it and it is
missing), decodes it once into the clip cache with Ray Data, streams one training epoch and the
test split as (B, C, T, H, W) uint8 batches, and reports what it saw. It says plainly that the
search and the farm are not part of this run yet.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from privar.cluster import connect
from privar.data.cache import cache_bytes
from privar.data.pipeline import open_study_data
from privar.study import load_study


def _say(msg: str) -> None:
    print(msg, flush=True)


def run_data_pipeline(study_path: str, address: str | None = None) -> int:
    study = load_study(study_path)
    cfg = study.data
    _say(f"study {study.name}: data from {cfg.adapter} at {cfg.root}")
    t0 = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"  probed {done}/{total}", file=sys.stderr, flush=True)

    # Ray first: a wrong address fails in seconds, before any probing.
    resources = connect(address)
    _say(f"  Ray: {resources.get('CPU', 0):g} CPUs" + (f" at {address}" if address else " (local)"))
    data = open_study_data(cfg, seed=study.seed, progress=progress)
    splits = Counter(r.split for r in data.records)
    _say(
        f"  {len(data.records)} videos ({', '.join(f'{k} {v}' for k, v in sorted(splits.items()))})"
        f", {len(data.quarantined)} quarantined, probed in {time.monotonic() - t0:.1f} s"
    )
    for q in data.quarantined:
        _say(f"  quarantined: {q.path}: {q.reason}")

    t1 = time.monotonic()
    cache = data.prepare()
    size_mb = cache_bytes(data.records, data.spec.size) / 2**20
    if cache is not None:
        _say(
            f"  clip cache: {cache.folder} ({size_mb:.1f} MiB), ready in "
            f"{time.monotonic() - t1:.1f} s"
        )
    else:
        _say(
            f"  no clip cache ({size_mb:.1f} MiB over the {cfg.cache_budget_gb:g} GiB budget or "
            "no cache folder): every epoch decodes"
        )

    for split, train in (("train", True), ("test", False)):
        t2, n, shape = time.monotonic(), 0, None
        for batch in data.stream(split, train=train, epoch=0, batch_size=8):
            n += len(batch.clip)
            shape = tuple(batch.clip.shape[1:])
        dt = time.monotonic() - t2
        _say(f"  streamed {split}: {n} clips (C, T, H, W) = {shape}, {n / dt:.1f} clips/s")
    if len(data.quarantined):
        _say(f"  quarantined after streaming: {len(data.quarantined)}")
    _say(
        "Ran the data pipeline only: the search and the adversary farm are not built yet "
        "(issues Studies, Farm). `privar train STUDY` trains the study's scheme once."
    )
    return 0
