"""Decode throughput, side by side in one run on the same clips.

Prints: raw decord clips/s in one process; the same split among as many processes as Ray has
CPUs, and among plain Ray tasks (decoding only): what the cores and what Ray core allow; the Ray
Data pipeline's clips/s end to end (decode on CPU workers, stream (B, C, T, H, W) uint8 batches
to this process); each as a share of raw x cores; and clip-cache reads/s, alone and through the
stream (cut in this process, as trials do). Goal: the pipeline keeps at least 80% of raw decode
throughput per core used.

    python benchmarks/data.py [--videos 48] [--frames 64] [--size 112] [--clip-len 16]
        [--quick] [--out FILE.json]

``--quick``: 48 videos of 32 frames, two passes. ``--out`` writes the figures as JSON, the
goal's under ``pipeline_vs_raw_per_core``.

Measured on this project's 2-CPU machine, nothing else running (2026-11-28, second session):
``pipeline_vs_raw_per_core`` 0.64-0.70 by default, 0.53-0.59 with ``--quick``, 0.84 with ``--videos
240``; the goal is met on passes of a few hundred videos, not on 48. Two plain processes keep
0.95-1.02, plain Ray tasks 0.77-0.85 at 48 videos: Ray core alone leaves little room, and Ray Data
loses 0.08-0.15 more. Its driver spends 0.15-0.2 s of CPU per 0.6 s pass (the scheduling loop, the
metadata thread, the iterator's threads, deserialising blocks) and its stats and
autoscaling-coordinator actors 0.07 s, on the two cores the tasks decode on (py-spy and ``/proc``).
Since the stream hands clips over as decoded, (T, H, W, C) seen as (C, T, H, W), and its collate no
longer copies every batch, the same-run A/B against the code before gave 0.669 vs 0.638, 0.606 vs
0.574 and 0.643 vs 0.592, and the clip cache stream 6,700-8,100 clips/s against 2,500-2,800
(training clips 4,400-4,500 against 2,100-2,300: each draws its offset from a generator of its own,
seeded by seed, epoch and video, which costs about 50 us). Tried before that change and not kept,
each side by side in one run: one Ray Data execution for four passes (0.63 against 0.59 for four
executions: start-up is not the cost), Ray Data's stats and metrics off (0.59 against 0.57),
metadata fetched inline (``RAY_DATA_METADATA_PREFETCH_ON_THREAD=0``, 0.59-0.61 against 0.56-0.58);
and after it, tasks of a whole number of batches (within the noise). Earlier: before the stream
started its passes at full width (``_start_at_full_width`` in :mod:`privar.data.stream`) a short
pass decoded in one worker, one task after another (0.33).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import ray

from privar.cluster import connect, disconnect
from privar.data.adapters import scan_dataset
from privar.data.cache import ClipCache
from privar.data.dataset import StudyData
from privar.data.decoder import create_decoder
from privar.data.manifest import VideoRecord
from privar.data.probe import probe_records
from privar.data.sampling import ClipSpec
from privar.data.stream import videos_per_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=48, help="about this many synthetic videos")
    ap.add_argument("--frames", type=int, default=64, help="frames per video")
    ap.add_argument("--size", type=int, default=112, help="video height and width, pixels")
    ap.add_argument("--clip-len", type=int, default=16, help="frames per clip")
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="Ray CPUs")
    ap.add_argument("--repeats", type=int, default=3, help="passes over the clips, best kept")
    ap.add_argument("--work", type=Path, default=None, help="folder for videos and cache")
    ap.add_argument("--quick", action="store_true", help="48 videos of 32 frames, two passes")
    ap.add_argument("--out", type=Path, help="write the figures as JSON")
    args = ap.parse_args()
    if args.quick:
        args.videos, args.frames, args.repeats = 48, 32, 2

    work = args.work or Path(tempfile.mkdtemp(prefix="privar-bench-"))
    per_pair = max(3, args.videos // 16)  # the set needs a clip of every pair in each split
    options = dict(num_actors=4, num_actions=4, clips_per_pair=per_pair, num_frames=args.frames,
                   height=args.size, width=args.size)  # fmt: skip
    records = probe_records(scan_dataset("synthetic", work / "videos", **options)).records
    # Every clip served the same way by both paths: the centre clip of every video.
    records = [dataclasses.replace(r, split="test") for r in records]
    spec = ClipSpec(clip_len=args.clip_len, stride=1, size=(args.size, args.size))
    n = len(records)
    print(f"{n} videos of {args.frames} frames at {args.size}x{args.size}; clips of "
          f"{args.clip_len} frames; best of {args.repeats} passes")  # fmt: skip

    cores = args.cpus
    raw = best_rate(args.repeats, n, lambda: decode(records, spec))
    # What the cores give without Ray: the pass split among ``cores`` processes.
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        shares = [records[i::cores] for i in range(cores)]
        processes = best_rate(
            args.repeats, n, lambda: pool.starmap(decode, [(r, spec) for r in shares])
        )

    connect(num_cpus=cores)
    # What Ray core gives: the stream's own split into tasks, decoding only (no clips
    # returned), without Ray Data.
    per_task = videos_per_task(n)
    chunks = [records[i : i + per_task] for i in range(0, n, per_task)]
    remote = ray.remote(num_cpus=1)(decode)
    ray_tasks = best_rate(
        args.repeats, n, lambda: ray.get([remote.remote(c, spec) for c in chunks])
    )
    streamed = StudyData(records, spec, cache_root=None)
    pipe = best_rate(args.repeats, n, lambda: drain(streamed))

    cached = StudyData(records, spec, cache_root=work / "cache")
    t = time.perf_counter()
    cache = cached.prepare()
    build_s = time.perf_counter() - t
    fast = max(args.repeats, 20)  # a pass over the cache takes milliseconds: more of them
    cache_raw = best_rate(fast, n, lambda: read_cache(cache, records, spec))
    cache_pipe = best_rate(fast, n, lambda: drain(cached))
    cache_train = best_rate(fast, n, lambda: drain(cached, train=True))
    disconnect()

    per_core = raw * cores
    print(f"{'raw decord, 1 process':<44}{raw:>10.1f} clips/s")
    print(f"{f'raw decord, {cores} processes':<44}{processes:>10.1f} clips/s"
          f"{processes / per_core:>8.2f} of raw x cores")  # fmt: skip
    print(f"{f'plain Ray tasks (decode only), {cores} CPUs':<44}{ray_tasks:>10.1f} clips/s"
          f"{ray_tasks / per_core:>8.2f}")  # fmt: skip
    print(f"{f'Ray Data pipeline, {cores} CPUs':<44}{pipe:>10.1f} clips/s"
          f"{pipe / per_core:>8.2f}   (goal >= 0.80)")  # fmt: skip
    print(f"{'clip cache build (decode all frames)':<44}{build_s:>10.1f} s")
    print(f"{'clip cache reads, 1 process':<44}{cache_raw:>10.1f} clips/s")
    print(f"{'clip cache stream, this process':<44}{cache_pipe:>10.1f} clips/s")
    print(f"{'  the same, training clips (random offsets)':<44}{cache_train:>10.1f} clips/s")
    print(f"{'cache stream / raw decode':<44}{cache_pipe / raw:>10.2f}x")
    if args.out:
        args.out.write_text(json.dumps({
            "videos": n, "frames": args.frames, "size": args.size, "clip_len": args.clip_len,
            "cpus": cores, "raw_clips_per_s": raw, "processes_clips_per_s": processes,
            "ray_tasks_clips_per_s": ray_tasks, "pipeline_clips_per_s": pipe,
            "processes_vs_raw_per_core": processes / per_core,
            "ray_tasks_vs_raw_per_core": ray_tasks / per_core,
            "pipeline_vs_raw_per_core": pipe / per_core, "cache_build_s": build_s,
            "cache_clips_per_s": cache_raw, "cache_stream_clips_per_s": cache_pipe,
            "cache_stream_train_clips_per_s": cache_train,
        }, indent=2))  # fmt: skip


def decode(records: list[VideoRecord], spec: ClipSpec) -> int:
    """Raw decord: the centre clip of every video in ``records``, one after another."""
    decoder = create_decoder("decord")
    for r in records:
        decoder.read(r.path, spec.indices(r.num_frames, train=False), spec.size)
    return len(records)


def read_cache(cache: ClipCache, records: list[VideoRecord], spec: ClipSpec) -> None:
    """The centre clip of every video from ``cache``, each dropped once read (as :func:`decode`
    drops its frames: keeping them all would time the page faults of fresh memory)."""
    for i, r in enumerate(records):
        cache.clip(i, spec.indices(r.num_frames, train=False))


def drain(data: StudyData, train: bool = False) -> int:
    return sum(len(b.clip) for b in data.stream("test", train=train, batch_size=8))


def best_rate(repeats: int, n: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


if __name__ == "__main__":
    main()
