"""Decode throughput, side by side in one run on the same clips.

Prints: raw decord clips/s in one process; the Ray Data pipeline's clips/s end to end (decode on
CPU workers, stream (B, C, T, H, W) uint8 batches to this process); their ratio per core used;
and clip-cache reads/s (in one process, and through the same Ray Data stream). Goal: the pipeline
keeps at least 80% of raw decode throughput per core used.

    python benchmarks/data.py [--videos 48] [--frames 64] [--size 112] [--clip-len 16]
        [--quick] [--out FILE.json]

``--quick``: 48 videos of 32 frames, two passes. ``--out`` writes the figures as JSON, the
goal's under ``pipeline_vs_raw_per_core``.

Measured on this project's 2-CPU machine, nothing else running: ``pipeline_vs_raw_per_core``
0.52-0.53 with ``--quick``, 0.66 by default, 0.79 with ``--videos 240``; the goal is not met.
Before the stream started its passes at full width (``_start_at_full_width`` in
:mod:`privar.data.stream`), the same runs gave 0.33, 0.33 and 0.61: a short pass decoded in one
worker, one task after another. Profiled with other work beside it, a pass of the default's 48
videos took about 0.58 s: 0.05 s of Ray Data start-up before the first task runs, 0.49 s of
decoding (the decode tasks use 0.87 s of CPU where raw decord uses 0.73 s, and the driver and Ray's
own processes 0.17 s more), then 0.04 s for the last batches to reach the consumer.

Profiled again (2026-11-28, alone): a 48-video pass is CPU-bound, about 1.0 s of CPU in a 0.53 s
pass on the 2 cores. The decode tasks use 0.82-0.84 s of it; the same function run in one
process costs what raw decord does (0.72-0.80 s), and a plain Ray task decoding all 48 videos
takes 5% longer than this process, so about half the tasks' excess is Ray's worker and half Ray
Data's (about 10 ms a task). The driver uses 0.10-0.11 s per pass, half of it in threads that
end with the pass (the execution's start-up and its iterator); one of the first two tasks runs at
half speed beside it. Fewer, larger tasks: 2 tasks of 24 give 0.75-0.76 but the first clips then
come at the pass's end, so decoding no longer overlaps training; 4 tasks of 12 gave 0.73-0.74 in a
side script and 0.66-0.68 here (``--repeats 8``), so the split stays. What would pay the start-up
once: one Ray Data execution per trial across its epochs, not one per pass (not built). A
finished task's clips reach the consumer up to 0.3 s after the task ends (timed in the tasks and
at the consumer); Ray Data 2.60's executor and its metadata thread each wait on their refs with
``ray.wait(..., timeout=0.1)`` between looks, which likely accounts for most of it.
That day, by pass size: ``--videos 96`` 0.72, ``--videos 240`` 0.82, ``--videos 480
--repeats 2`` 0.79.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

from privar.cluster import connect, disconnect
from privar.data.adapters import scan_dataset
from privar.data.dataset import StudyData
from privar.data.decoder import create_decoder
from privar.data.probe import probe_records
from privar.data.sampling import ClipSpec


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

    decoder = create_decoder("decord")
    raw = best_rate(args.repeats, n, lambda: [
        decoder.read(r.path, spec.indices(r.num_frames, train=False), spec.size) for r in records
    ])  # fmt: skip

    connect(num_cpus=args.cpus)
    streamed = StudyData(records, spec, cache_root=None)
    pipe = best_rate(args.repeats, n, lambda: drain(streamed))

    cached = StudyData(records, spec, cache_root=work / "cache")
    t = time.perf_counter()
    cache = cached.prepare()
    build_s = time.perf_counter() - t
    cache_raw = best_rate(args.repeats, n, lambda: [
        cache.clip(i, spec.indices(r.num_frames, train=False)) for i, r in enumerate(records)
    ])  # fmt: skip
    cache_pipe = best_rate(args.repeats, n, lambda: drain(cached))
    disconnect()

    cores = args.cpus
    print(f"{'raw decord, 1 process':<40}{raw:>10.1f} clips/s")
    print(f"{f'Ray Data pipeline, {cores} CPUs':<40}{pipe:>10.1f} clips/s")
    print(f"{'pipeline / (raw x cores)':<40}{pipe / (raw * cores):>10.2f}   (goal >= 0.80)")
    print(f"{'clip cache build (decode all frames)':<40}{build_s:>10.1f} s")
    print(f"{'clip cache reads, 1 process':<40}{cache_raw:>10.1f} clips/s")
    print(f"{f'clip cache via Ray Data, {cores} CPUs':<40}{cache_pipe:>10.1f} clips/s")
    print(f"{'cache stream / raw decode':<40}{cache_pipe / raw:>10.2f}x")
    if args.out:
        args.out.write_text(json.dumps({
            "videos": n, "frames": args.frames, "size": args.size, "clip_len": args.clip_len,
            "cpus": cores, "raw_clips_per_s": raw, "pipeline_clips_per_s": pipe,
            "pipeline_vs_raw_per_core": pipe / (raw * cores), "cache_build_s": build_s,
            "cache_clips_per_s": cache_raw, "cache_pipeline_clips_per_s": cache_pipe,
        }, indent=2))  # fmt: skip


def drain(data: StudyData) -> int:
    return sum(len(b.clip) for b in data.stream("test", train=False, batch_size=8))


def best_rate(repeats: int, n: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


if __name__ == "__main__":
    main()
