"""Typed, frozen configuration from YAML, with errors that name the key path (the loader; the
study schema itself is in :mod:`privar.study`).

``parse_yaml(text, where)`` reads YAML with the safe loader (plain data: no tag builds an object)
and bounds what it gives back; ``from_dict(cls, mapping, where)`` builds a frozen dataclass from
that data, checking unknown keys, types (numbers finite and within 64 bits) and nested
dataclasses, and raising :class:`UserError` with ``file: key.path: problem`` in one line. Range
checks live in each dataclass's ``__post_init__``, raising ``ValueError`` with the field name,
which is rewrapped here.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from privar.errors import UserError

T = TypeVar("T")

#: Nesting a study file never needs (the deepest shipped value is 6 levels down): deeper data is
#: a mistake, and the loaders below walk it recursively.
MAX_DEPTH = 32
#: Values (scalars, lists, mappings) with YAML's aliases expanded. A shipped study has a few
#: hundred; a few lines of nested aliases (a "billion laughs") expand to billions, which the
#: loaders below would copy and walk.
MAX_VALUES = 100_000
INT64 = 2**63  # ints go to torch, numpy and Optuna, which hold 64 bits
#: A study file is a few kilobytes; PyYAML reads about 100 kB a second, so a huge file would hold
#: `privar validate` for minutes before the value count refuses it.
MAX_BYTES = 2**18


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in YAML file ``path``; a missing, unreadable or invalid file, or one that is
    not a mapping, is a :class:`UserError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such study file")
    try:
        with path.open("rb") as f:  # bytes: the YAML reader detects UTF-8/16, rejects the rest
            text = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e})") from None
    if len(text) > MAX_BYTES:
        raise UserError(f"{path}: larger than {MAX_BYTES // 2**10} KiB; a study file is a few KiB")
    data = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys at the top level")
    return data


def parse_yaml(text: str | bytes, where: str) -> Any:
    """YAML ``text`` as plain data (the safe loader), at most :data:`MAX_DEPTH` levels deep and
    :data:`MAX_VALUES` values with its aliases expanded; anything else is a :class:`UserError`
    naming ``where`` (a file, or a flag and key)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark else ""
        why = getattr(e, "problem", None) or getattr(e, "reason", None) or type(e).__name__
        raise UserError(f"{where}: {at}not valid YAML ({why})") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise UserError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, OverflowError) as e:  # a date like 2024-13-01, an int of 5000 digits
        raise UserError(f"{where}: not valid YAML ({e})") from None
    _bounded(data, where)
    return data


def _bounded(data: Any, where: str) -> None:
    """Refuse ``data`` deeper than :data:`MAX_DEPTH` or larger than :data:`MAX_VALUES` with its
    aliases expanded, naming the key path where it goes past. An alias is the same Python object
    as its anchor, so each collection is measured once: (values, levels) below it, memoised by
    identity."""
    seen: dict[int, tuple[int, int]] = {}

    def measure(value: Any, depth: int, path: str) -> tuple[int, int]:
        if depth > MAX_DEPTH:  # also ends a self-referencing alias (&a [*a])
            raise UserError(f"{where}: {_cut(path)}: nested deeper than {MAX_DEPTH} levels")
        if not isinstance(value, dict | list):
            return 1, 0
        if id(value) not in seen:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            below = [(1, 0)] * len(value) if isinstance(value, dict) else []  # the keys
            for k, v in items:
                below.append(measure(v, depth + 1, f"{path}[{k}]" if isinstance(value, list)
                                     else _join(path, k)))  # fmt: skip
            count = 1 + sum(n for n, _ in below)
            if count > MAX_VALUES:
                raise UserError(f"{where}: {_cut(path) or 'top level'}: more than {MAX_VALUES} "
                                "values once its aliases (*name) are expanded")  # fmt: skip
            seen[id(value)] = (count, 1 + max((h for _, h in below), default=0))
        count, height = seen[id(value)]
        if depth + height > MAX_DEPTH:
            raise UserError(f"{where}: {_cut(path)}: nested deeper than {MAX_DEPTH} levels")
        return count, height

    measure(data, 0, "")


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
            raise UserError(f"{where}: {path}: expected a list of {len(args)}, got {brief(value)}")
        return tuple(
            _convert(a, v, where, f"{path}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: {path}: expected a mapping, got {_kind(value)}")
        for k in value:
            if not isinstance(k, str):
                raise UserError(f"{where}: {_join(path, k)}: a key must be text, got {_kind(k)}")
        return {k: _convert(args[1], v, where, _join(path, k)) for k, v in value.items()}
    if tp is Any:  # plain YAML data (params, options, choices): its numbers are checked still
        return _plain(value, where, path)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(_number(value, where, path))
    if tp in (int, float, str, bool) and (
        not isinstance(value, tp) or (tp is int and isinstance(value, bool))
    ):
        raise UserError(f"{where}: {path}: expected {tp.__name__}, got {_kind(value)} "
                        f"{brief(value)}")  # fmt: skip
    return _number(value, where, path)


def _plain(value: Any, where: str, path: str) -> Any:
    """``value``, any YAML data, with every number in it checked by :func:`_number`."""
    if isinstance(value, dict):
        for k, v in value.items():
            _plain(v, where, _join(path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _plain(v, where, f"{path}[{i}]")
    else:
        _number(value, where, path)
    return value


def _number(value: Any, where: str, path: str) -> Any:
    """``value`` unless it is a number no study means: NaN, an infinity, an int past 64 bits."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: {path}: expected a finite number, got {value}")
    if isinstance(value, int) and not -INT64 <= value < INT64:
        raise UserError(f"{where}: {path}: {brief(value)} does not fit in 64 bits")
    return value


def key_name(key: Any) -> str:
    """Key ``key`` as a message shows it: as written when it is printable text without spaces
    at its ends, else its repr (a newline or a tab cannot break the one-line error, a blank key
    shows as ``' '``); cut when long."""
    plain = isinstance(key, str) and key.isprintable() and key and key.strip() == key
    return _cut(key) if plain else brief(key)


def brief(value: Any) -> str:
    """``repr(value)``, cut for a one-line message."""
    return _cut(repr(value))


def _cut(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis last) for a one-line message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _join(path: str, key: Any) -> str:
    return f"{path}.{key_name(key)}" if path else key_name(key)


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(v), type(v).__name__)
