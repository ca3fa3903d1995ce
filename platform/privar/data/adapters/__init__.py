"""Dataset adapters: each turns a dataset on disk into unprobed manifest records.

An adapter is a function ``scan(root: Path, **options) -> list[VideoRecord]`` that reads only the
directory layout and split files (never the videos: probing is a separate, shared step). It
raises :class:`privar.errors.UserError` naming the path when the layout is not what it expects.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from privar.data.manifest import VideoRecord
from privar.errors import UserError
from privar.registry import Entry, Registry

Adapter = Callable[..., list[VideoRecord]]

#: Adapters register here (``@ADAPTERS.register(name)``, ``creates_root=True`` for one that makes
#: its dataset when the folder is missing); their modules are imported on first use.
ADAPTERS: Registry[list[VideoRecord]] = Registry("dataset adapter")
# Modules that register adapters when imported; imported lazily so `privar --help` stays fast.
_MODULES = ("csv_manifest", "synthetic", "kth", "sbu", "ipn", "ucf101", "hmdb51", "jester")


def _load_all() -> None:
    for m in _MODULES:
        importlib.import_module(f"{__name__}.{m}")


def list_adapters() -> list[str]:
    _load_all()
    return ADAPTERS.names()


def adapter_entry(name: str) -> Entry[list[VideoRecord]]:
    """Adapter ``name`` and its config, to inspect its options without scanning anything."""
    _load_all()
    return ADAPTERS.entry(name)


def scan_dataset(name: str, root: str | Path, **options) -> list[VideoRecord]:
    """Unprobed records of dataset ``name`` found under ``root``."""
    entry = adapter_entry(name)
    root = Path(root)
    if not root.exists() and not entry.cfg.creates_root:
        raise UserError(f"{root}: dataset root does not exist")
    return entry.factory(root, **options)
