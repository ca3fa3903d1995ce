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

Adapter = Callable[..., list[VideoRecord]]

_ADAPTERS: dict[str, Adapter] = {}
_CREATES_ROOT: set[str] = set()  # adapters that make their dataset when it is missing
# Modules that register adapters when imported; imported lazily so `privar --help` stays fast.
_MODULES = ("csv_manifest", "synthetic", "kth", "sbu", "ipn", "ucf101", "hmdb51", "jester")


def register_adapter(name: str, creates_root: bool = False) -> Callable[[Adapter], Adapter]:
    def wrap(fn: Adapter) -> Adapter:
        if name in _ADAPTERS:
            raise ValueError(f"adapter {name!r} registered twice")
        _ADAPTERS[name] = fn
        if creates_root:
            _CREATES_ROOT.add(name)
        return fn

    return wrap


def _load_all() -> None:
    for m in _MODULES:
        importlib.import_module(f"{__name__}.{m}")


def list_adapters() -> list[str]:
    _load_all()
    return sorted(_ADAPTERS)


def get_adapter(name: str) -> Adapter:
    """The adapter registered as ``name``, to inspect its options without scanning anything."""
    _load_all()
    if name not in _ADAPTERS:
        raise UserError(f"unknown dataset adapter {name!r}; known: {', '.join(sorted(_ADAPTERS))}")
    return _ADAPTERS[name]


def scan_dataset(name: str, root: str | Path, **options) -> list[VideoRecord]:
    """Unprobed records of dataset ``name`` found under ``root``."""
    _load_all()
    if name not in _ADAPTERS:
        raise UserError(f"unknown dataset adapter {name!r}; known: {', '.join(sorted(_ADAPTERS))}")
    root = Path(root)
    if not root.exists() and name not in _CREATES_ROOT:
        raise UserError(f"{root}: dataset root does not exist")
    return _ADAPTERS[name](root, **options)
