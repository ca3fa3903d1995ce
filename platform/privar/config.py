"""Typed, frozen configuration from YAML, with errors that name the key path (the loader; the
study schema itself is in :mod:`privar.study`).

``from_dict(cls, mapping, where)`` builds a frozen dataclass from plain YAML data, checking
unknown keys, types and nested dataclasses, and raising :class:`UserError` with
``file: key.path: problem`` in one line. Range checks live in each dataclass's
``__post_init__``, raising ``ValueError`` with the field name, which is rewrapped here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
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
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, list | tuple):
            raise UserError(f"{where}: {path}: expected a list, got {_kind(value)}")
        return tuple(_convert(args[0], v, where, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{where}: {path}: expected a list, got {_kind(value)}")
        return [_convert(args[0], v, where, f"{path}[{i}]") for i, v in enumerate(value)]
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
        return {k: _convert(args[1], v, where, _join(path, k)) for k, v in value.items()}
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
