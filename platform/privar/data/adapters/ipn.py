"""The ``ipn`` adapter: IPN Hand (Benitez-Garcia et al., ICPR 2020), as BDQ (Kumawat and
Nagahara, CVPR 2022) uses it: the 13 hand gestures to recognise, the actor's gender to hide.

Layout under ``root``:

* ``Annot_TrainList.txt`` and ``Annot_TestList.txt``: CSV lines ``video,label,id,t_start,t_end,
  frames`` (frame numbers 1-based, both ends included; a header line is allowed), one line per
  annotated segment of a long video;
* ``metadata.csv``: one row per video with a ``video`` column and a gender column named ``Sex`` or
  ``Gender`` (any case), valued M/F or Male/Female (any case);
* the videos, as ``videos/<video>.avi`` (or .mp4) or as frame folders
  ``frames/<video>/<video>_NNNNNN.jpg``.

One record per segment (a gesture instance). Its clip is ``segments/<video>_<t_start>_<t_end>.avi``
(or .mp4) when a ``segments/`` folder of pre-cut clips exists; otherwise the segment is cut once
from the video, or encoded from its frames at IPN's 30 fps, to
``convert_to/<video>_<t_start>_<t_end>.mp4`` (default ``root/_videos``).

action = the label code: B0A and B0B (pointing with one and two fingers) and G01-G11. IPN's 14th
class, D0X (non-gesture), is left out by default as IPN and BDQ do, leaving the 13 gestures of
BDQ's list; ``exclude`` names the labels to leave out.

privacy = the actor's gender, "female" or "male".

Split: IPN's own lists, Annot_TrainList -> train, Annot_TestList -> test (IPN has no val list).
They keep subjects apart, which suits a gender label: it is an attribute, not an identity.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from privar.data.adapters import ADAPTERS
from privar.data.adapters._convert import cut_segments, frames_to_mp4
from privar.data.manifest import VideoRecord
from privar.errors import UserError

FPS = 30
LISTS = (("train", "Annot_TrainList.txt"), ("test", "Annot_TestList.txt"))
_GENDERS = {"m": "male", "male": "male", "man": "male"}
_GENDERS |= {"f": "female", "female": "female", "woman": "female"}


@ADAPTERS.register("ipn")
def scan(
    root: Path, exclude: Sequence[str] = ("D0X",), convert_to: str | Path | None = None
) -> list[VideoRecord]:
    """IPN Hand segments under ``root`` as clips, D0X left out unless ``exclude`` says else."""
    cache = Path(convert_to) if convert_to is not None else root / "_videos"
    excluded = {exclude} if isinstance(exclude, str) else set(exclude)
    gender = _genders(root / "metadata.csv")
    segments = []  # (video, label, t_start, t_end, split)
    for split, name in LISTS:
        for where, video, label, start, end in _annotations(root / name):
            if label in excluded:
                continue
            if video not in gender:
                raise UserError(f"{where}: video {video!r} has no row in {root / 'metadata.csv'}")
            segments.append((video, label, start, end, split))
    clips = _clips(root, cache, [(v, s, e) for v, _, s, e, _ in segments])
    return [
        VideoRecord(str(clips[v, s, e]), label, gender[v], split)
        for v, label, s, e, split in segments
    ]


def _annotations(path: Path) -> list[tuple[str, str, str, int, int]]:
    """(file:line, video, label, t_start, t_end) of each segment listed in ``path``."""
    if not path.is_file():
        raise UserError(f"{path}: missing IPN annotation list")
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            row = [c.strip() for c in row]
            if not any(row) or (line == 1 and row[0].lower() == "video"):
                continue
            where = f"{path}:{line}"
            try:
                video, label, start, end = row[0], row[1], int(row[3]), int(row[4])
            except (IndexError, ValueError):
                raise UserError(f"{where}: expected video,label,id,t_start,t_end,frames") from None
            if not 1 <= start <= end:
                raise UserError(f"{where}: frames {start}..{end} are not a range from frame 1 on")
            rows.append((where, video, label, start, end))
    return rows


def _genders(path: Path) -> dict[str, str]:
    """Video name -> "female" or "male", from IPN's ``metadata.csv``."""
    if not path.is_file():
        raise UserError(f"{path}: missing IPN metadata (a video and a Sex or Gender column)")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        sex = columns.get("sex") or columns.get("gender")
        video = columns.get("video") or columns.get("video_name") or columns.get("name")
        if sex is None or video is None:
            found = ", ".join(columns) or "none"
            raise UserError(f"{path}: needs a video and a Sex or Gender column; has {found}")
        genders = {}
        for line, row in enumerate(reader, start=2):
            value = (row[sex] or "").strip()
            if value.lower() not in _GENDERS:
                raise UserError(f"{path}:{line}: gender {value!r} is not M/F or Male/Female")
            name = re.sub(r"\.(avi|mp4)$", "", (row[video] or "").strip())
            genders[name] = _GENDERS[value.lower()]
    return genders


Segment = tuple[str, int, int]
"""(video, t_start, t_end), frame numbers as IPN writes them (1-based, both included)."""


def _clips(root: Path, cache: Path, segments: list[Segment]) -> dict[Segment, Path]:
    """(video, t_start, t_end) -> the clip of that segment, cutting the clips not cut yet."""
    if (root / "segments").is_dir():
        return {seg: _precut(root / "segments", *seg) for seg in segments}
    by_video: dict[str, list[Segment]] = defaultdict(list)
    for seg in dict.fromkeys(segments):
        by_video[seg[0]].append(seg)
    clips = {seg: cache / "{}_{}_{}.mp4".format(*seg) for seg in segments}
    for video, segs in by_video.items():
        source = _source(root, video)
        if source.is_dir():
            for _, s, e in segs:
                out = clips[video, s, e]
                frames_to_mp4(source, out, FPS, pattern="*.jpg", first=s - 1, last=e - 1)
        else:
            cut_segments(source, [(s - 1, e - 1, clips[video, s, e]) for _, s, e in segs])
    return clips


def _precut(folder: Path, video: str, start: int, end: int) -> Path:
    for suffix in (".avi", ".mp4"):
        clip = folder / f"{video}_{start}_{end}{suffix}"
        if clip.is_file():
            return clip
    raise UserError(f"{folder / f'{video}_{start}_{end}.avi'}: missing pre-cut segment clip")


def _source(root: Path, video: str) -> Path:
    for source in (root / "videos" / f"{video}.avi", root / "videos" / f"{video}.mp4"):
        if source.is_file():
            return source
    if (root / "frames" / video).is_dir():
        return root / "frames" / video
    raise UserError(f"{root / 'videos' / video}.avi: missing (nor is there frames/{video}/)")
