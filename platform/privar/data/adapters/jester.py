"""The ``jester`` adapter: 20BN-Jester v1 (Materzynska et al., ICCVW 2019), as ELR (extreme
low-resolution action recognition) uses it: 27 hand gestures to recognise.

Layout: ``root/20bn-jester-v1/<id>/00001.jpg ...`` (one frame folder per video; ``root`` may
also be ``20bn-jester-v1`` itself) and, in ``root`` or beside it, ``jester-v1-labels.csv`` (one
label a line), ``jester-v1-train.csv`` and ``jester-v1-validation.csv`` (``<id>;<label>`` lines).
Each frame folder is encoded once, at Jester's 12 fps, to ``convert_to/<id>.mp4`` (default
``root/_videos``) and the record points at that clip.

privacy = "unknown" for every video: Jester publishes no actor labels, and ELR uses it for
action recognition only.

Split: jester-v1-train -> train, jester-v1-validation -> val. Jester's test labels are not
public, so there is no test split (evaluate on val, as ELR does).
"""

from __future__ import annotations

from pathlib import Path

from privar.data.adapters import ADAPTERS
from privar.data.adapters._convert import frames_to_mp4
from privar.data.manifest import VideoRecord
from privar.errors import UserError

FPS = 12
FRAMES = "20bn-jester-v1"
LISTS = (("train", "jester-v1-train.csv"), ("val", "jester-v1-validation.csv"))


@ADAPTERS.register("jester")
def scan(root: Path, convert_to: str | Path | None = None) -> list[VideoRecord]:
    """Jester's train and validation videos, as mp4 clips under ``convert_to``."""
    cache = Path(convert_to) if convert_to is not None else root / "_videos"
    frames = root / FRAMES if (root / FRAMES).is_dir() else root
    labels = set(_lines(_find(root, "jester-v1-labels.csv")))
    listed = []  # every list is checked before the (long) conversion starts
    for split, name in LISTS:
        path = _find(root, name)
        for line, text in enumerate(_lines(path), start=1):
            video, _, label = (t.strip() for t in text.partition(";"))
            if label not in labels:
                raise UserError(f"{path}:{line}: label {label!r} is not in jester-v1-labels.csv")
            if not (frames / video).is_dir():
                raise UserError(f"{frames / video}: listed in {path}:{line}, but missing")
            listed.append((video, label, split))
    return [
        VideoRecord(str(_clip(frames / video, cache)), label, "unknown", split)
        for video, label, split in listed
    ]


def _clip(folder: Path, cache: Path) -> Path:
    return frames_to_mp4(folder, cache / f"{folder.name}.mp4", FPS, pattern="*.jpg")


def _find(root: Path, name: str) -> Path:
    for path in (root / name, root.parent / name):
        if path.is_file():
            return path
    raise UserError(f"{root / name}: missing Jester list (looked here and beside)")


def _lines(path: Path) -> list[str]:
    return [t.strip() for t in path.read_text().splitlines() if t.strip()]
