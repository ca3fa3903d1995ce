"""Probe videos in child processes, with a timeout, and quarantine the ones that fail.

decord can hang forever on some files while holding the GIL (so a thread cannot time it out) and
can crash the process on others, so every probe runs in a long-lived child process that the
parent kills and replaces when it does not answer in time. Probing opens the file, decodes the
first frame, and decodes the last frame the header claims (a truncated file often claims more
frames than it has: "frame count lies"). A decoder that counts the frames it finds (decord) sees
a truncated file as a short, valid one, so its count is also held against the container's
declared count (:func:`~privar.data.decoder.declared_frames`): a file missing more than
:func:`missing_frames_allowed` of its frames is quarantined as truncated when it ends before
its container says (the sizes in its header), else for a frame count that lies.

A reason says what is wrong in words a researcher can act on: file not found, cannot read
(permissions), empty, not a video (no container signature), truncated (with the sizes), frame
count lies, a single frame (:data:`MIN_FRAMES`), or the decoder's own first line.
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
from typing import BinaryIO

from privar.data.decoder import VideoInfo, create_decoder, declared_frames
from privar.data.manifest import Quarantined, VideoRecord
from privar.errors import BrokenVideo

DEFAULT_TIMEOUT_S = 30.0

MIN_FRAMES = 2
"""Fewer frames than this is no video to recognise an action in: a clip of it repeats one
frame, so it is quarantined, not padded like a merely short video."""


def probe_one(path: str, decoder_name: str = "decord") -> VideoInfo:
    """Probe ``path`` in this process (no timeout): info, or :class:`BrokenVideo` with a reason
    that says what is wrong with the file."""
    if not os.path.exists(path):
        raise BrokenVideo(path, "file not found")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise BrokenVideo(path, f"cannot read: {(e.strerror or str(e)).lower()}") from None
    if not head:
        raise BrokenVideo(path, "empty file (0 bytes)")
    decoder = create_decoder(decoder_name)
    try:
        info = decoder.probe(path)
    except BrokenVideo as e:
        why = _unopenable(path, head)  # the decoder's own words say less, where the bytes tell
        raise BrokenVideo(path, f"cannot open: {why}" if why else e.reason) from None
    if info.num_frames < MIN_FRAMES:
        raise BrokenVideo(path, "a single frame: a still image, with no motion to learn an "
                                "action from")  # fmt: skip
    try:
        decoder.read(path, [info.num_frames - 1])
    except BrokenVideo as e:
        raise BrokenVideo(
            path, f"frame count lies: header says {info.num_frames} frames ({e.reason})"
        ) from None
    declared = declared_frames(path)
    if declared and declared - info.num_frames > missing_frames_allowed(declared):
        # A file cut short, or whole but with a header that counts frames it does not hold.
        kind = "truncated" if _cut_short(path, head) else "frame count lies"
        raise BrokenVideo(
            path, f"{kind}: the container declares {declared} frames, {decoder_name} "
            f"decodes {info.num_frames}"
        )  # fmt: skip
    return info


def missing_frames_allowed(declared: int) -> int:
    """Frames a file may lack against its container's count and still be whole: 1, or 2% of a
    long video (muxers round a duration, and some AVI writers count a trailing empty frame)."""
    return max(1, declared // 50)


def _unopenable(path: str, head: bytes) -> str | None:
    """Why no decoder opens ``path`` (whose first bytes are ``head``), where the bytes tell:
    not a container privar knows, or one that ends before its own header says; else None."""
    if _container(head) is None:
        return "not a video (its first bytes are no MP4, AVI or Matroska header)"
    return _cut_short(path, head)


def _container(head: bytes) -> str | None:
    """The container whose signature starts ``head``: 'mp4' (and QuickTime), 'avi', 'mkv'
    (and WebM), or None."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):  # old QuickTime: no ftyp
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    return None


def _container_end(path: str, head: bytes) -> int | None:
    """The byte where ``path``'s container says it ends: the end of its last MP4 box, of the
    AVI RIFF chunk or of the Matroska segment. None where the sizes do not say (an unknown
    container, an MP4 box that runs to the end of the file, a Matroska segment of unknown
    size)."""
    kind = _container(head)
    with open(path, "rb") as f:
        if kind == "avi":
            return 8 + int.from_bytes(head[4:8], "little")
        if kind == "mp4":  # top-level boxes: 32-bit size (1: a 64-bit size follows; 0: to EOF)
            end, size = 0, os.path.getsize(path)
            while end < size:
                f.seek(end)
                box = f.read(16)
                if len(box) < 8:
                    return end + 8  # the file ends inside a box's header
                n = int.from_bytes(box[:4], "big")
                if n == 1:
                    n = int.from_bytes(box[8:16], "big")
                if n < 8:
                    return None  # to EOF (0), or no box at all
                end += n
            return end
        if kind == "mkv":  # the EBML header element, then the Segment element and its size
            f.seek(4)
            header = _ebml_size(f)
            if header is None:
                return None
            f.seek(header, os.SEEK_CUR)
            if f.read(4) != b"\x18\x53\x80\x67":
                return None
            segment = _ebml_size(f)
            return None if segment is None else f.tell() + segment
    return None


def _cut_short(path: str, head: bytes) -> str | None:
    """``truncated (...)`` with the sizes when ``path`` ends before its container says it does
    (:func:`_container_end`), else None."""
    end, size = _container_end(path, head), os.path.getsize(path)
    if end is None or end <= size:
        return None
    return f"truncated (the container runs to byte {end}, the file ends at byte {size})"


def _ebml_size(f: BinaryIO) -> int | None:
    """Read an EBML variable-length size at ``f``'s position; None for "unknown" (all ones)."""
    first = f.read(1)
    if not first or first[0] == 0:
        return None
    length = 9 - first[0].bit_length()  # leading zeros + 1 bytes in all
    value = first[0] & (0xFF >> length)
    rest = f.read(length - 1)
    for b in rest:
        value = value << 8 | b
    return None if value == (1 << 7 * length) - 1 else value


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
