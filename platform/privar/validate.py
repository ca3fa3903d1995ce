"""``privar validate``: check a study file beyond its schema, without building anything.

Reads entry configs (:class:`~privar.registry.EntryConfig`) and binds each entry's arguments, as
:meth:`~privar.registry.Registry.arguments` resolves them, to its factory's signature: unknown
names and ``params`` / ``options`` keys, values off a plain annotation, keys the platform fills;
torchvision weights, square frames, attention maps and K segments where the study needs them;
``search.space`` keys, each range end and choice making a valid study (checked again). Every
problem of a file is found, and :func:`check_study` raises them all as one :class:`UserError`.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from privar.config import brief, key_name
from privar.errors import UserError
from privar.registry import Entry, Registry
from privar.study import DataConfig, Param, Study, load_study, with_overrides

__all__ = ["NOT_SEARCHED", "StudyProblems", "check_study", "validate_file"]

#: Searching these would change how the study runs or is recorded, not what a trial trains.
NOT_SEARCHED = ("name", "out_dir", "search", "farm", "resources", "tracking", "data.adapter",
                "data.root", "data.cache_dir")  # fmt: skip
Filled = Mapping[str, tuple[Any, str]]  # what the platform passes: key -> (value, its source)


class StudyProblems(UserError):
    """Every problem of a study file: ``lines``, each ``file: key.path: problem``. The message is
    the first, counting the others, so that ``privar run`` still fails in one line."""

    def __init__(self, where: str, found: Sequence[str]) -> None:
        self.lines = [f"{where}: {p}" for p in found]
        more = f" (and {len(found) - 1} more: run privar validate)" if len(found) > 1 else ""
        super().__init__(self.lines[0] + more)


def validate_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Study:
    """Load study file ``path`` (with ``--set``-style ``overrides`` when given) and check it
    with :func:`check_study`; returns the study. Builds nothing, reads no data."""
    study, where = load_study(path), str(path)
    if overrides:
        study = with_overrides(study, dict(overrides), where="--set")
        where = f"{path} (with --set)"
    check_study(study, where)
    return study


def check_study(study: Study, where: str) -> None:
    """Raise :class:`StudyProblems` naming ``where`` with every problem of ``study`` beyond its
    schema (see the module docstring), if any. Builds no model, reads no file."""
    found = _resolved(study)
    found += _space(study, set(found))
    if found:
        raise StudyProblems(where, found)


def _model(pretrained: str | None, source: str) -> Filled:
    return {"num_classes": (2, "the dataset's labels"), "pretrained": (pretrained, source)}


def _resolved(study: Study) -> list[str]:
    from privar.data.adapters import ADAPTERS, list_adapters
    from privar.data.decoder import DECODERS
    from privar.encoders import ENCODERS
    from privar.models import ACTION_MODELS, PRIVACY_MODELS, RECON_MODELS

    list_adapters()  # imports the adapter modules, which register themselves
    data, farm, out = study.data, study.farm, []
    stat = ", ".join(n for n in ACTION_MODELS.names() if ACTION_MODELS.entry(n).cfg.attention)

    # Data: the adapter with its root and options, the decoder.
    _entry(out, ADAPTERS, data.adapter, "data.adapter", data, data.options, "data.options",
           {"root": (Path(data.root), "data.root")}, positional=1, label="adapter",
           noun="option")  # fmt: skip
    _entry(out, DECODERS, data.decoder, "data.decoder", data)

    # The encoder, the action model (under STAT, one with attention maps), the privacy model.
    enc, act, priv = study.encoder, study.action_model, study.privacy_model
    _entry(out, ENCODERS, enc.name, "encoder.name", data, enc.params)
    entry = _entry(out, ACTION_MODELS, act.name, "action_model.name", data, act.params,
                   filled=_model(act.pretrained, "action_model.pretrained"))  # fmt: skip
    if entry and study.scheme == "attention" and not entry.cfg.attention:
        out.append(f"action_model.name: the attention scheme (STAT) needs a K-segment model with "
                   f"forward_attention; {act.name!r} has none; those that do: {stat}")  # fmt: skip
    _entry(out, PRIVACY_MODELS, priv.name, "privacy_model.name", data, priv.params,
           filled=_model(priv.pretrained, "privacy_model.pretrained"))  # fmt: skip

    # The farm: names even when disabled, a typo is a typo.
    for i, name in enumerate(farm.adversaries):
        at = f"farm.adversaries[{i}]"
        _entry(out, PRIVACY_MODELS, name, at, data, filled=_model(farm.pretrained, at))
    if farm.reconstruction is not None:
        _entry(out, RECON_MODELS, farm.reconstruction, "farm.reconstruction", data,
               filled={"in_channels": (3, "the encoder's output")})  # fmt: skip
    if farm.action_model is not None:
        entry = _entry(out, ACTION_MODELS, farm.action_model, "farm.action_model", data,
                       filled=_model(None, "the farm"))  # fmt: skip
        if entry and study.scheme == "attention" and not entry.cfg.attention:
            out.append(f"farm.action_model: the attention scheme's clips are K segments; "
                       f"{farm.action_model!r} is not a K-segment model; use one of: {stat} "
                       "(or null: the study's)")  # fmt: skip
    for i, base in enumerate(farm.baselines):
        _entry(out, ENCODERS, base.name, f"farm.baselines[{i}].name", data, base.params)
    return out


def _entry(out: list[str], reg: Registry[Any], name: str, at: str, data: DataConfig,
           params: Mapping[str, Any] | None = None, params_at: str = "",
           filled: Filled | None = None, positional: int = 0, label: str = "",
           noun: str = "parameter") -> Entry[Any] | None:  # fmt: skip
    """Check entry ``name`` of ``reg`` at ``at`` and its ``params`` (at ``params_at``, default
    ``x.params`` for ``x.name``), and what its config asks of the study, appending each problem
    to ``out``. ``filled``: what the platform passes, key -> (value, its source), the first
    ``positional`` by position. An entry whose config names ``options`` passes its params on:
    they are checked against that, alone."""
    label, filled, params = label or reg.kind, dict(filled or {}), params or {}
    params_at = params_at or at.replace(".name", ".params")
    if name not in reg:
        out.append(f"{at}: unknown {label} {name!r}; known: {', '.join(reg.names())}")
        return None
    entry, what = reg.entry(name), f"{label} {name!r}"
    derived, given = entry.cfg.derived(data), {}
    for key, value in params.items():
        if key in filled or key in derived:
            source = filled[key][1] if key in filled else _data_source(entry, data, key)
            out.append(f"{params_at}.{key}: {what}: {key} is set from {source}, not here")
        else:
            given[key] = value
    args = [v for v, _ in list(filled.values())[:positional]]
    platform = {k: v for k, (v, _) in list(filled.items())[positional:]}
    kwargs = reg.arguments(name, data, given, **platform)
    target = entry.cfg.options
    if target is not None:  # the options alone go on
        args, kwargs = [], dict(given)
    try:  # eval_str: the annotations as types; one that does not resolve is not type-checked
        sig = inspect.signature(target or entry.factory, eval_str=True)
    except NameError:
        sig = inspect.signature(target or entry.factory)
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    takes = {n: p.annotation for n, p in sig.parameters.items() if p.kind in keyword}
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        listed = ", ".join(sorted(set(takes) - set(filled) - set(derived))) or f"no {noun}s"
        for key in [k for k in given if k not in takes]:
            out.append(f"{params_at}.{key_name(key)}: {what} has no {noun} {brief(key)}; it "
                       f"takes: {listed}")  # fmt: skip
            del given[key], kwargs[key]
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        out.append(f"{at}: {what} cannot be built with its arguments: {e}")
    for key, value in given.items():
        if _fits(value, takes.get(key, Any)) is False:
            out.append(f"{params_at}.{key}: {what}: expected {_show(takes[key])}, got "
                       f"{brief(value)}")  # fmt: skip

    # What the entry's config asks of the study.
    pretrained, source = filled.get("pretrained", (None, ""))
    if pretrained == "torchvision" and "torchvision" not in entry.cfg.pretrained:
        have = ", ".join(n for n in reg.names() if "torchvision" in reg.entry(n).cfg.pretrained)
        out.append(f"{source}: {name!r} has no torchvision weights (pretrained: torchvision); "
                   f"give a state-dict file, or use one of: {have}")  # fmt: skip
    (h, w), m = data.size, entry.cfg.square_multiple
    if m and (h != w or h % m):
        out.append(f"{at}: {name} takes square frames, a multiple of {m} px, but data.size is "
                   f"{[h, w]}")  # fmt: skip
    if entry.cfg.attention and data.segments < 1:
        out.append(f"{at}: {name!r} is a K-segment model: it needs data.segments >= 1")
    return entry


def _data_source(entry: Entry[Any], data: DataConfig, key: str) -> str:
    """The ``data.*`` field that derived argument ``key`` follows: the one whose change changes
    it (the entry config does not name it), else "the data section"."""
    for f in fields(DataConfig):
        v = getattr(data, f.name)
        if isinstance(v, int | float | tuple) and not isinstance(v, bool):
            bumped = tuple(x + 1 for x in v) if isinstance(v, tuple) else v + 1
            other = entry.cfg.derived(replace(data, **{f.name: bumped}))
            if other.get(key) != entry.cfg.derived(data)[key]:
                return f"data.{f.name}"
    return "the data section"


def _fits(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` fits annotation ``hint``, or None when that is beyond a plain check."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        results = {_fits(value, a) for a in args}
        return True if True in results else (None if None in results else False)
    if origin is typing.Literal:
        return value in args
    if hint in (bool, str, type(None)):
        return isinstance(value, hint)
    if hint in (int, float):
        return isinstance(value, int if hint is int else int | float) and type(value) is not bool
    if (origin or hint) not in (list, tuple, Sequence):
        return None
    if isinstance(value, str):  # a str is a Sequence of str, nothing else here
        return origin is Sequence and args in ((), (str,))
    fixed = origin is tuple and args and args[-1] is not Ellipsis
    if not isinstance(value, list | tuple) or (fixed and len(args) != len(value)):
        return False
    each = args if fixed else [(args or (Any,))[0]] * len(value)
    results = {_fits(v, h) for v, h in zip(value, each, strict=True)}
    return False if False in results else (None if None in results else True)


def _show(hint: Any) -> str:
    """``hint`` for a reader; an optional's ``None`` left out (it stands for the default)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " | ".join(_show(a) for a in typing.get_args(hint) if a is not type(None))
    return inspect.formatannotation(hint).replace("collections.abc.", "")


def _space(study: Study, known: set[str]) -> list[str]:
    """The problems of ``study.search.space``: per searched key, the first value that makes an
    invalid study, with the problems it adds to the ``known`` ones."""
    out, probe = [], "search.space"  # probe: with_overrides' `where`, stripped from its messages
    for key, param in study.search.space.items():
        at, problem = f"search.space.{key_name(key)}", _unsearchable(study, key, param)
        if problem:
            out.append(f"{at}: {problem}")
            continue
        if param.type == "choice":
            values = [(f"values[{i}]", v) for i, v in enumerate(param.values or [])]
        else:
            cast = int if param.type == "int" else float
            values = [("low", cast(param.low)), ("high", cast(param.high))]  # type: ignore[arg-type]
        for label, value in values:
            try:
                probed = with_overrides(study, {key: value}, where=probe)
                new = [p for p in _resolved(probed) if p not in known]
            except UserError as e:
                new = [str(e).removeprefix(f"{probe}: ")]
            for inner in (p.removeprefix(f"{key_name(key)}: ") for p in new):
                if "expected int" in inner and param.type in ("uniform", "loguniform"):
                    inner += " (search it with type: int)"
                out.append(f"{at}: {label} {brief(value)} makes an invalid study: {inner}")
            if new:
                break
    return out


def _unsearchable(study: Study, key: str, param: Param) -> str | None:
    """Why dotted ``key`` cannot be searched with ``param`` (a study key as :func:`with_overrides`
    takes it, not in :data:`NOT_SEARCHED`, whole ends for an int), or None."""
    blocked = next((b for b in NOT_SEARCHED if key == b or key.startswith(b + ".")), None)
    if blocked:
        return f"{blocked} is how the study runs, not a trial's hyper-parameter; it cannot be " \
               "searched"  # fmt: skip
    node: Any = asdict(study)
    *parents, leaf = key.split(".")
    why = "a searched key is a dotted study key as --set takes it, e.g. adversarial.alpha"
    for i, part in enumerate(parents):
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            section = key_name(".".join(parents[: i + 1]))
            return f"not a study key ({section} is not a section); {why}"
    if leaf not in node and not (parents and parents[-1] in ("params", "options")):
        section = key_name(".".join(parents)) if parents else "the top level"
        has = f"{section} has no key {brief(leaf)}"
        return f"not a study key ({has}; it has: {', '.join(sorted(node))}); {why}"
    ends = (param.low, param.high)
    if param.type == "int" and not all(float(x).is_integer() for x in ends):  # type: ignore[arg-type]
        return f"an int parameter needs whole low and high, got {param.low}, {param.high}"
    return None
