"""Probe videos in child processes, with a timeout, and quarantine the ones that fail.

decord can hang forever on some files while holding the GIL (so a thread cannot time it out) and
can crash the process on others, so every probe runs in a long-lived child process that the
parent kills and replaces when it does not answer in time. Probing opens the file, decodes the
first frame, and decodes the last frame the header claims (a truncated file often claims more
frames than it has: "frame count lies"). A decoder that counts the frames it finds (decord) sees
a truncated file as a short, valid one, so its count is also held against the container's
declared count (:func:`~privar.data.decoder.declared_frames`): a file missing more than
:func:`missing_frames_allowed` of its frames is quarantined as truncated.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from privar.data.decoder import VideoInfo, create_decoder, declared_frames
from privar.data.manifest import Quarantined, VideoRecord
from privar.errors import BrokenVideo

DEFAULT_TIMEOUT_S = 30.0


def probe_one(path: str, decoder_name: str = "decord") -> VideoInfo:
    """Probe ``path`` in this process (no timeout): info, or :class:`BrokenVideo`."""
    if not os.path.exists(path):
        raise BrokenVideo(path, "file not found")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise BrokenVideo(path, "empty file (0 bytes)")
    decoder = create_decoder(decoder_name)
    info = decoder.probe(path)
    try:
        decoder.read(path, [info.num_frames - 1])
    except BrokenVideo as e:
        raise BrokenVideo(
            path, f"frame count lies: header says {info.num_frames} frames ({e.reason})"
        ) from None
    declared = declared_frames(path)
    if declared and declared - info.num_frames > missing_frames_allowed(declared):
        raise BrokenVideo(
            path, f"truncated: the container declares {declared} frames, {decoder_name} "
            f"decodes {info.num_frames}"
        )  # fmt: skip
    return info


def missing_frames_allowed(declared: int) -> int:
    """Frames a file may lack against its container's count and still be whole: 1, or 2% of a
    long video (muxers round a duration, and some AVI writers count a trailing empty frame)."""
    return max(1, declared // 50)


def _serve(decoder_name: str) -> None:
    """Child process loop: a path per line on stdin, a JSON answer per line on stdout."""
    for line in sys.stdin:
        path = line.rstrip("\n")
        try:
            answer = {"ok": asdict(probe_one(path, decoder_name))}
        except BrokenVideo as e:
            answer = {"broken": e.reason}
        except Exception as e:  # anything else the decoder throws is still a broken file
            answer = {"broken": f"{type(e).__name__}: {str(e).strip()[:200]}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


class ProbeWorker:
    """One child process probing one file at a time; replaced when it hangs or dies.

    A plain ``python -m privar.data.probe`` child rather than multiprocessing: nothing of the
    parent (Ray, torch threads, an unguarded ``__main__``) is forked or re-imported.
    """

    def __init__(self, decoder_name: str = "decord") -> None:
        self.decoder_name = decoder_name
        self._start()

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "privar.data.probe", self.decoder_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # FFmpeg's warnings; the reason travels in the answer
            text=True,
        )

    def _restart(self) -> int | None:
        self._proc.kill()
        code = self._proc.wait()
        self._start()
        return code

    def probe(self, path: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> VideoInfo:
        """Info of ``path``, or :class:`BrokenVideo` (also for a hang past ``timeout_s`` or a
        crash of the decoder)."""
        assert self._proc.stdin and self._proc.stdout
        try:
            self._proc.stdin.write(path + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            code = self._restart()
            raise BrokenVideo(path, f"decoder crashed (exit code {code})") from None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        if not ready:
            self._restart()
            raise BrokenVideo(path, f"decoder hung (no answer in {timeout_s:g} s)")
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            code = self._restart()
            raise BrokenVideo(path, f"decoder crashed (exit code {code})")
        answer = json.loads(line)
        if "broken" in answer:
            raise BrokenVideo(path, answer["broken"])
        return VideoInfo(**answer["ok"])

    def close(self) -> None:
        if self._proc.stdin:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@dataclass
class ProbeResult:
    """Probed records (in input order) and the quarantined files, with their reasons."""

    records: list[VideoRecord]
    quarantined: list[Quarantined]


def probe_records(
    records: Sequence[VideoRecord],
    workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    decoder_name: str = "decord",
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> ProbeResult:
    """Probe every record's file with ``workers`` child processes (default: the machine's cores).

    Records already probed are kept as they are, unless ``force``. ``progress(done, total)`` is
    called after each file. Broken files land in ``quarantined``; nothing raises for a bad video.
    """
    todo = [i for i, r in enumerate(records) if force or not r.probed]
    out: list[VideoRecord | Quarantined] = list(records)
    if todo:
        jobs: queue.Queue[int] = queue.Queue()
        for i in todo:
            jobs.put(i)
        lock = threading.Lock()
        done = [0]

        def run() -> None:
            worker = ProbeWorker(decoder_name)
            try:
                while True:
                    try:
                        i = jobs.get_nowait()
                    except queue.Empty:
                        return
                    r = records[i]
                    try:
                        out[i] = r.with_info(worker.probe(r.path, timeout_s))
                    except BrokenVideo as e:
                        out[i] = Quarantined(r.path, e.reason)
                    with lock:
                        done[0] += 1
                        if progress:
                            progress(done[0], len(todo))
            finally:
                worker.close()

        n = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return ProbeResult(
        records=[r for r in out if isinstance(r, VideoRecord)],
        quarantined=[q for q in out if isinstance(q, Quarantined)],
    )


if __name__ == "__main__":
    _serve(sys.argv[1] if len(sys.argv) > 1 else "decord")
