"""Input overlap: the next batch is made ready while the current step runs.

A background thread iterates the source (cutting clips from the clip cache, or pulling Ray
Data's stream) and, on a GPU, pins each batch and copies it to the device on a side stream, so
the GPU never idles while the training process cuts the next batch; on a CPU it lays each batch
out contiguously (the stream's clips are channels-last views), so the step's thread does not. The
thread only moves uint8 clips and labels; what draws random numbers (the mirror) stays in the
loop's own thread, so a seed gives the same run with or without the overlap.

:class:`Prefetch` also measures what is left of the wait: ``wait_frac``, the share of the
iteration's wall time the consumer spent blocked on the next batch (a starved GPU shows as a
fraction near 1).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import torch

S = TypeVar("S")  # a source batch: a dataclass of tensors (e.g. privar.data.stream.ClipBatch)
T = TypeVar("T")

_DONE = object()  # the source is exhausted
_PUT_S = 0.05  # how often a worker waiting on a full queue checks that the consumer still listens


class Prefetch(Generic[S, T]):
    """Iterate ``source`` (dataclasses of CPU tensors) with ``depth`` batches made ready ahead,
    each moved to ``device`` in the background (pinned, ``non_blocking`` on a side stream when
    ``device`` is a GPU), then turned into a ``T`` by ``finish`` in the consumer's thread.

    One iteration per instance. ``wait_s`` (seconds blocked on the next batch) and ``wall_s``
    (seconds from the first request to exhaustion, the consumer's steps included) are filled in
    as it runs.
    """

    def __init__(self, source: Iterable[S], device: torch.device, finish: Callable[[S], T],
                 depth: int = 2) -> None:  # fmt: skip
        self.source, self.device, self.finish, self.depth = source, device, finish, depth
        self.wait_s = 0.0
        self.wall_s = 0.0

    @property
    def wait_frac(self) -> float:
        """Share of the iteration's wall time spent waiting for data, in [0, 1]."""
        return min(self.wait_s / self.wall_s, 1.0) if self.wall_s > 0 else 0.0

    def __iter__(self) -> Iterator[T]:
        start = time.perf_counter()
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        side = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        worker = threading.Thread(target=self._fill, args=(ready, stop, side), daemon=True)
        worker.start()
        try:
            while True:
                asked = time.perf_counter()
                item = ready.get()
                self.wait_s += time.perf_counter() - asked
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                batch, copied = item
                if copied is not None:
                    main = torch.cuda.current_stream(self.device)
                    main.wait_event(copied)
                    for t in _tensors(batch):
                        # Allocated on the side stream, used on the main one: the caching
                        # allocator must not hand the memory out again before the step is done.
                        t.record_stream(main)
                yield self.finish(batch)
        finally:
            stop.set()  # a worker waiting on a full queue gives up within _PUT_S
            worker.join()
            self.wall_s = time.perf_counter() - start

    def _fill(self, ready: queue.Queue, stop: threading.Event,
              side: torch.cuda.Stream | None) -> None:  # fmt: skip
        """The worker: source batches onto the device, into ``ready``, until ``stop``."""
        try:
            for batch in self.source:
                if side is None:  # a CPU: the step's contiguous layout, made here too
                    item = (_map(batch, lambda t: t.to(self.device).contiguous()), None)
                else:
                    with torch.cuda.stream(side):
                        pinned = _map(batch, torch.Tensor.pin_memory)
                        batch = _map(pinned, lambda t: t.to(self.device, non_blocking=True))
                        copied = torch.cuda.Event()
                        copied.record(side)
                    item = (batch, copied)
                if not _put(ready, item, stop):
                    return
            _put(ready, _DONE, stop)
        except BaseException as e:  # handed to the consumer, which raises it
            _put(ready, e, stop)


def _put(ready: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer has stopped listening; returns whether it was put."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=_PUT_S)
            return True
        except queue.Full:
            continue
    return False


def _tensors(b: Any) -> list[torch.Tensor]:
    return [getattr(b, f.name) for f in dataclasses.fields(b)]


def _map(b: S, fn: Callable[[torch.Tensor], torch.Tensor]) -> S:
    """A copy of dataclass ``b`` with ``fn`` applied to each of its tensors."""
    changed = {f.name: fn(getattr(b, f.name)) for f in dataclasses.fields(b)}  # type: ignore[arg-type]
    return dataclasses.replace(b, **changed)  # type: ignore[type-var]
