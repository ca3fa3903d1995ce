"""Typed, frozen configuration read from YAML, with errors that name the key path.

``from_dict(cls, mapping, where)`` builds a frozen dataclass from plain YAML data, checking
unknown keys, types and nested dataclasses, and raising :class:`UserError` with
``file: key.path: problem`` in one line. Range checks live in each dataclass's
``__post_init__``, raising ``ValueError`` with the field name, which is rewrapped here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from privar.errors import UserError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such study file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark else ""
        raise UserError(f"{path}: {at}not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys at the top level")
    return data


def from_dict(cls: type[T], data: Any, where: str, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; ``where`` (a file name) and ``path`` (the key path
    so far) make the error message."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: {path or 'top level'}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise UserError(
                f"{where}: {_join(path, key)}: unknown key; known: {', '.join(sorted(known))}"
            )
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in data:
            raise UserError(f"{where}: {_join(path, f.name)}: required key is missing")
    values = {k: _convert(hints[k], v, where, _join(path, k)) for k, v in data.items()}
    try:
        return cls(**values)
    except ValueError as e:
        raise UserError(f"{where}: {path + '.' if path else ''}{e}") from None


def _convert(tp: Any, value: Any, where: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where, path)
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise UserError(f"{where}: {path}: expected a list of {len(args)}, got {value!r}")
        return tuple(
            _convert(a, v, where, f"{path}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: {path}: expected a mapping, got {_kind(value)}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (
        not isinstance(value, tp) or (tp is int and isinstance(value, bool))
    ):
        raise UserError(f"{where}: {path}: expected {tp.__name__}, got {_kind(value)} {value!r}")
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(v), type(v).__name__)


@dataclass(frozen=True)
class DataConfig:
    """Where the videos are and how clips are cut from them.

    ``root`` is relative to the working directory; ``options`` go to the adapter (for
    ``synthetic``: the :class:`privar.data.synthetic.SynthSpec` fields). ``size`` is (height,
    width) in pixels after decoding; ``cache_budget_gb`` decides between the clip cache and
    decoding every epoch.
    """

    adapter: str = "synthetic"
    root: str = "privar-data/synthetic"
    options: dict[str, Any] = field(default_factory=dict)
    clip_len: int = 8
    stride: int = 1
    segments: int = 0
    size: tuple[int, int] = (32, 32)
    decoder: str = "decord"
    cache_dir: str | None = None  # default: ROOT/.privar-cache; on a cluster, shared storage
    cache_budget_gb: float = 8.0
    probe_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("clip_len", "stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.segments < 0:
            raise ValueError(f"segments: must be 0 (one clip) or a count, got {self.segments}")
        if min(self.size) < 1:
            raise ValueError(f"size: both sides must be at least 1 pixel, got {self.size}")
        if self.cache_budget_gb < 0:
            raise ValueError(f"cache_budget_gb: must be >= 0, got {self.cache_budget_gb}")
        if self.probe_timeout_s <= 0:
            raise ValueError(f"probe_timeout_s: must be > 0, got {self.probe_timeout_s}")


@dataclass(frozen=True)
class Study:
    """A study file. This is the part the data layer reads; the search, training and farm
    sections join it as they land."""

    name: str
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"name: use letters, digits, '-' and '_', got {self.name!r}")


def load_study(path: str | Path) -> Study:
    """Read and check a study file; every problem is a :class:`UserError` naming the key."""
    return from_dict(Study, load_yaml(path), str(path))
