"""The manifest: one row per video, the one format every later stage reads.

Columns: ``path, action, privacy, split`` (from a dataset adapter) and ``num_frames, fps,
height, width`` (from probing the file). Labels are strings on disk; :func:`label_index` maps
them to class indices, sorted so that the mapping does not depend on row order. Relative paths
are relative to the manifest file's folder, so a manifest moves with its videos.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from privar.data.decoder import VideoInfo
from privar.errors import UserError

SPLITS = ("train", "val", "test")
REQUIRED = ("path", "action", "privacy", "split")
PROBED = ("num_frames", "fps", "height", "width")


@dataclass(frozen=True)
class VideoRecord:
    """One video. The probed fields are 0 until :func:`privar.data.probe.probe_records` runs."""

    path: str
    action: str
    privacy: str
    split: str
    num_frames: int = 0
    fps: float = 0.0
    height: int = 0
    width: int = 0

    @property
    def probed(self) -> bool:
        return self.num_frames > 0

    def with_info(self, info: VideoInfo) -> VideoRecord:
        return replace(self, **asdict(info))


@dataclass(frozen=True)
class Quarantined:
    """A video that could not be decoded, with the reason, kept so that nothing is lost."""

    path: str
    reason: str


COLUMNS = tuple(f.name for f in fields(VideoRecord))


def label_index(records: Iterable[VideoRecord], field: str) -> dict[str, int]:
    """Class index of every label of ``field`` ("action" or "privacy"), in sorted order."""
    if field not in ("action", "privacy"):
        raise ValueError(f"labels come from 'action' or 'privacy', not {field!r}")
    return {name: i for i, name in enumerate(sorted({getattr(r, field) for r in records}))}


def read_manifest(path: str | os.PathLike) -> list[VideoRecord]:
    """Read a manifest CSV. Needs the columns ``path, action, privacy, split``; the probed
    columns are optional (0 when absent). Bad files raise :class:`UserError` naming file, row
    and column."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such manifest file")
    base = path.parent
    records = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}; need {REQUIRED}")
        for line, row in enumerate(reader, start=2):
            records.append(_parse_row(row, base, f"{path}:{line}"))
    if not records:
        raise UserError(f"{path}: the manifest has no rows")
    return records


def _parse_row(row: dict[str, str], base: Path, where: str) -> VideoRecord:
    for c in REQUIRED:
        if not (row.get(c) or "").strip():
            raise UserError(f"{where}: column {c!r} is empty")
    split = row["split"].strip()
    if split not in SPLITS:
        raise UserError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    p = Path(row["path"].strip())
    values: dict = {
        "path": str(p if p.is_absolute() else base / p),
        "action": row["action"].strip(),
        "privacy": row["privacy"].strip(),
        "split": split,
    }
    for c, kind in (("num_frames", int), ("fps", float), ("height", int), ("width", int)):
        text = (row.get(c) or "").strip()
        try:
            values[c] = kind(text) if text else kind(0)
        except ValueError:
            raise UserError(f"{where}: column {c!r}: {text!r} is not a number") from None
    return VideoRecord(**values)


def write_manifest(records: Sequence[VideoRecord], path: str | os.PathLike) -> Path:
    """Write ``records`` as CSV, paths relative to the manifest's folder where they lie below it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in records:
            row = asdict(r)
            row["path"] = _relative_if_below(r.path, base)
            w.writerow(row)
    return path


def write_quarantine(items: Sequence[Quarantined], path: str | os.PathLike) -> Path:
    """Write the quarantine list (``path, reason``) as CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "reason"])
        w.writerows((q.path, q.reason) for q in items)
    return path


def read_quarantine(path: str | os.PathLike) -> list[Quarantined]:
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [Quarantined(r["path"], r["reason"]) for r in csv.DictReader(f)]


def _relative_if_below(p: str, base: Path) -> str:
    full = Path(p).resolve()
    try:
        return str(full.relative_to(base))
    except ValueError:
        return str(full)
