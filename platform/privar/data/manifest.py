"""The manifest: one row per video, the one format every later stage reads.

Columns: ``path, action, privacy, split`` (from a dataset adapter) and ``num_frames, fps,
height, width`` (from probing the file). Labels are strings on disk; :func:`label_index` maps
them to class indices, sorted so that the mapping does not depend on row order. Relative paths
are relative to the manifest file's folder, so a manifest moves with its videos.

What a manifest may not hold, each an error naming the file and the row or column, because a
study would otherwise run on something other than what the researcher meant:

- an unknown column: most often a misspelt one (``nun_frames``, ``Split``), which would be
  silently ignored, as an unknown key of a study file would;
- the same video on two rows: in two splits it leaks test videos into training, in one it
  weighs a video twice;
- no video to train on (split ``train``) or none to evaluate on (``val``, else ``test``):
  :func:`split_problem`, the same rule a study applies again after quarantining broken videos.

A label found in one split only is allowed, with a warning (:func:`one_split_labels`): datasets
split by actor put some privacy labels in one split on purpose, and a rare action may miss a
split; the researcher should still know what it does to the figures.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
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


def split_problem(records: Sequence[VideoRecord]) -> str | None:
    """What keeps ``records`` from serving a study, in words, or None: a study trains on split
    ``train`` and evaluates on ``val`` (else ``test``), so each needs at least one video."""
    counts = Counter(r.split for r in records)
    if not counts["train"]:
        return "no video in split 'train', which a study trains on"
    if not (counts["val"] or counts["test"]):
        return "no video in split 'val' or 'test', which a study evaluates on"
    return None


def one_split_labels(records: Sequence[VideoRecord]) -> list[str]:
    """One warning line per label field whose labels are not in every split of ``records``.

    A label only in ``train`` is never evaluated (its videos teach, nothing measures them); a
    label missing from ``train`` is never learnt, so its evaluation videos are always
    misclassified and cap the split's accuracy below 1. The videos stay in the study either way:
    datasets split by actor (privacy labels) do this on purpose."""
    splits = sorted({r.split for r in records}, key=SPLITS.index)
    out = []
    for key in ("action", "privacy"):
        seen: dict[str, set[str]] = {}
        for r in records:
            seen.setdefault(getattr(r, key), set()).add(r.split)
        only = {label: s for label, s in sorted(seen.items()) if len(s) < len(splits)}
        if only:
            shown = ", ".join(f"{label!r} ({'/'.join(sorted(s, key=SPLITS.index))})"
                              for label, s in list(only.items())[:5])  # fmt: skip
            more = f" and {len(only) - 5} more" if len(only) > 5 else ""
            out.append(f"{len(only)} {key} label(s) not in every split ({'/'.join(splits)}): "
                       f"{shown}{more}; a label missing from train is never predicted, one "
                       f"only in train never evaluated")  # fmt: skip
    return out


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
    # UTF-8 whatever the locale (paths are often not ASCII); "-sig" drops the byte-order mark
    # that spreadsheet programs put before the header.
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            _check_columns(path, reader.fieldnames or [])
            first: dict[str, int] = {}  # video (normalised path) -> the line it is first on
            for line, row in enumerate(reader, start=2):
                record = _parse_row(row, base, f"{path}:{line}")
                video = os.path.normpath(record.path)
                if video in first:
                    raise UserError(f"{path}:{line}: column 'path': {row['path'].strip()!r} is "
                                    f"already on line {first[video]}")  # fmt: skip
                first[video] = line
                records.append(record)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason}); save it as UTF-8") from None
    if not records:
        raise UserError(f"{path}: the manifest has no rows")
    problem = split_problem(records)
    if problem:
        raise UserError(f"{path}: column 'split': {problem}")
    return records


def _check_columns(path: Path, names: Sequence[str]) -> None:
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; need {REQUIRED}")
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise UserError(f"{path}:1: unknown column(s) {', '.join(map(repr, unknown))}; a "
                        f"manifest has {', '.join(COLUMNS)}")  # fmt: skip


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
    with path.open("w", newline="", encoding="utf-8") as f:
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
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "reason"])
        w.writerows((q.path, q.reason) for q in items)
    return path


def read_quarantine(path: str | os.PathLike) -> list[Quarantined]:
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [Quarantined(r["path"], r["reason"]) for r in csv.DictReader(f)]


def _relative_if_below(p: str, base: Path) -> str:
    full = Path(p).resolve()
    try:
        return str(full.relative_to(base))
    except ValueError:
        return str(full)
