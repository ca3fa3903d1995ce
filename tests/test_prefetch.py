"""The input overlap: the next batch is made ready in a background thread while the current step
runs, and ``wait_frac`` tells a starved loop from a fed one. Sources are real iterators of real
batches that take real (slept) time, as cutting clips from the cache does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import torch

from privar.data.stream import ClipBatch
from privar.train.prefetch import Prefetch

CPU = torch.device("cpu")


def _source(n: int, cut_s: float) -> Iterator[ClipBatch]:
    """``n`` uint8 batches (4, 3, 2, 8, 8), each taking ``cut_s`` seconds to make."""
    for i in range(n):
        time.sleep(cut_s)
        clip = torch.full((4, 3, 2, 8, 8), i, dtype=torch.uint8)
        ids = torch.arange(4) + 4 * i
        yield ClipBatch(clip, ids % 2, ids % 3, ids)


def test_a_channels_last_clip_reaches_a_cpu_loop_contiguous() -> None:
    """The stream's clips are channels-last views; on a CPU the background thread lays them out
    as the step does, the values unchanged."""
    frames = torch.randint(0, 256, (4, 2, 8, 8, 3), dtype=torch.uint8)  # (B, T, H, W, C)
    ids = torch.arange(4)
    batch = ClipBatch(frames.permute(0, 4, 1, 2, 3), ids, ids, ids)
    (clip,) = Prefetch([batch], CPU, lambda b: b.clip)
    assert clip.is_contiguous() and torch.equal(clip, frames.permute(0, 4, 1, 2, 3))


def _run(n: int, cut_s: float, step_s: float) -> tuple[Prefetch, list[int]]:
    feed = Prefetch(_source(n, cut_s), CPU, lambda b: int(b.clip[0, 0, 0, 0, 0]))
    seen = []
    for i in feed:
        time.sleep(step_s)  # the training step
        seen.append(i)
    return feed, seen


def test_batches_arrive_in_order_and_finished() -> None:
    feed = Prefetch(_source(5, 0.0), CPU, lambda b: b.clip.float().div(255))
    xs = list(feed)
    assert [int(x[0, 0, 0, 0, 0] * 255) for x in xs] == [0, 1, 2, 3, 4]
    assert all(x.dtype == torch.float32 for x in xs)
    assert 0 <= feed.wait_frac <= 1


def test_a_slow_source_starves_the_loop() -> None:
    feed, seen = _run(6, cut_s=0.1, step_s=0.0)
    assert seen == list(range(6))
    assert feed.wait_frac > 0.8


def test_a_fast_source_keeps_the_loop_fed() -> None:
    feed, _ = _run(6, cut_s=0.0, step_s=0.1)
    assert feed.wait_frac < 0.2


def test_the_next_batch_is_cut_while_the_step_runs() -> None:
    # Cutting and stepping take as long as each other. Without the overlap the loop would wait
    # half its time and take 6 x 0.2 s; overlapped it waits for the first batch only.
    feed, seen = _run(6, cut_s=0.1, step_s=0.1)
    assert seen == list(range(6))
    assert feed.wall_s < 0.95, feed.wall_s
    assert feed.wait_frac < 0.35, feed.wait_frac


def test_a_failing_source_raises_in_the_loop() -> None:
    def broken() -> Iterator[ClipBatch]:
        yield from _source(2, 0.0)
        raise OSError("cache file vanished")

    feed = Prefetch(broken(), CPU, lambda b: b)
    with pytest.raises(OSError, match="vanished"):
        list(feed)


def test_leaving_early_stops_the_worker() -> None:
    before = threading.active_count()
    feed = Prefetch(_source(50, 0.0), CPU, lambda b: b)
    for _ in feed:
        break
    assert threading.active_count() == before
    assert feed.wall_s > 0
