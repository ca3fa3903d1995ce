"""The ``manifest`` adapter: any CSV with the columns ``path, action, privacy, split``."""

from __future__ import annotations

from pathlib import Path

from privar.data.adapters import ADAPTERS
from privar.data.manifest import VideoRecord, read_manifest


@ADAPTERS.register("manifest")
def scan(root: Path, file: str = "manifest.csv") -> list[VideoRecord]:
    """``root`` is the CSV itself, or a folder holding ``file``."""
    return read_manifest(root if root.is_file() else root / file)
