"""``privar validate``: check a study file beyond its schema, without building anything.

The schema (:mod:`privar.study`) checks keys, types and ranges. This module checks what needs the
registries, by reading them and the factories' signatures, never by calling a factory:

* every registry name: ``encoder.name``, ``action_model.name``, ``privacy_model.name``,
  ``data.adapter``, ``farm.adversaries[i]``, ``farm.reconstruction``, ``farm.action_model``,
  ``farm.baselines[i].name``;
* every ``params`` / ``options`` key against what the factory (or adapter) accepts, and its value
  against the parameter's annotation where that is a plain type. A factory that passes ``**kw``
  on is followed into the privar class or function it passes them to; ``**kw`` that go to
  torchvision are accepted as they are (only building would tell);
* keys the platform fills in itself (``num_classes``, ``pretrained``, STAT's ``num_segments``...)
  are refused in ``params``, since a second value would clash or silently win;
* ``pretrained: torchvision`` only for models that have torchvision weights; ``vit_b_16`` only on
  square frames it can take; the attention scheme only with models that have
  ``forward_attention`` (found in the classes their factories construct), for training and for
  the farm's fresh action model;
* ``search.space``: each key must be a study key as ``--set`` takes it, and each end of a range
  and each choice must make a valid study: the study is rebuilt with that value
  (:func:`privar.study.with_overrides`) and checked again, so the schema's own checks apply.

Every problem is one :class:`~privar.errors.UserError` line: ``file: key.path: problem``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from privar.errors import UserError
from privar.study import Param, Study, load_study, with_overrides

__all__ = ["Accepted", "accepted_params", "check_study", "validate_file"]

#: Searching these would change how the study runs or is recorded, not what a trial trains.
NOT_SEARCHED = (
    "name",
    "out_dir",
    "search",
    "farm",
    "resources",
    "tracking",
    "data.adapter",
    "data.root",
    "data.cache_dir",
)

# Privacy models that only take square frames of one size, and the parameter naming it.
_FIXED_INPUT = {"vit_b_16": ("image_size", 16)}


def validate_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Study:
    """Load study file ``path`` (with ``--set``-style ``overrides`` when given) and check it
    with :func:`check_study`; returns the study. Builds nothing, reads no data."""
    study = load_study(path)
    where = str(path)
    if overrides:
        study = with_overrides(study, dict(overrides), where="--set")
        where = f"{path} (with --set)"
    check_study(study, where)
    return study


def check_study(study: Study, where: str) -> None:
    """Raise :class:`UserError` ``where: key.path: problem`` for the first problem in ``study``
    (see the module docstring for what is checked). Builds no model, reads no file."""
    _check_resolved(study, where)
    _check_space(study, where)


# --- the study as it stands --------------------------------------------------------------------


def _fail(where: str, at: str, problem: str) -> UserError:
    return UserError(f"{where}: {at}: {problem}")


def _check_resolved(study: Study, where: str) -> None:
    from privar.data.adapters import get_adapter, list_adapters
    from privar.encoders import ENCODERS
    from privar.models import ACTION_MODELS, PRIVACY_MODELS, RECON_MODELS

    def factory(registry: Any, name: str, at: str) -> Callable[..., Any]:
        if name not in registry:
            known = ", ".join(registry.names())
            raise _fail(where, at, f"unknown {registry.kind} {name!r}; known: {known}")
        return registry.factory(name)

    # Data: the adapter and its options (root comes from data.root).
    if study.data.adapter not in list_adapters():
        known = ", ".join(list_adapters())
        raise _fail(
            where, "data.adapter", f"unknown adapter {study.data.adapter!r}; known: {known}"
        )
    _check_params(
        get_adapter(study.data.adapter),
        study.data.options,
        f"adapter {study.data.adapter!r}",
        where,
        "data.options",
        reserved={"root": "data.root"},
        consumed=1,
        noun="option",
    )

    # The encoder.
    enc = factory(ENCODERS, study.encoder.name, "encoder.name")
    _check_params(
        enc, study.encoder.params, f"encoder {study.encoder.name!r}", where, "encoder.params"
    )

    # The action model; STAT's K and F come from the data section.
    labels = {"num_classes": "the dataset's labels"}
    action_reserved = {**labels, "pretrained": "action_model.pretrained"}
    if study.scheme == "attention":
        action_reserved |= {"num_segments": "data.segments", "frames_per_segment": "data.clip_len"}
    act = factory(ACTION_MODELS, study.action_model.name, "action_model.name")
    _check_params(
        act,
        study.action_model.params,
        f"action model {study.action_model.name!r}",
        where,
        "action_model.params",
        reserved=action_reserved,
    )
    _check_pretrained(
        study.action_model.pretrained,
        study.action_model.name,
        ACTION_MODELS,
        where,
        "action_model.pretrained",
    )
    if study.scheme == "attention" and not attention_models(
        ACTION_MODELS, [study.action_model.name]
    ):
        stat = ", ".join(attention_models(ACTION_MODELS, ACTION_MODELS.names()))
        raise _fail(
            where,
            "action_model.name",
            f"the attention scheme (STAT) needs a K-segment model with forward_attention; "
            f"{study.action_model.name!r} has none; those that do: {stat}",
        )

    # The in-loop privacy model.
    priv = factory(PRIVACY_MODELS, study.privacy_model.name, "privacy_model.name")
    _check_params(
        priv,
        study.privacy_model.params,
        f"privacy model {study.privacy_model.name!r}",
        where,
        "privacy_model.params",
        reserved={**labels, "pretrained": "privacy_model.pretrained"},
    )
    _check_pretrained(
        study.privacy_model.pretrained,
        study.privacy_model.name,
        PRIVACY_MODELS,
        where,
        "privacy_model.pretrained",
    )
    if study.privacy_model.name in _FIXED_INPUT:
        key, _ = _FIXED_INPUT[study.privacy_model.name]
        default = inspect.signature(priv).parameters[key].default
        side = study.privacy_model.params.get(key, default)
        if tuple(study.data.size) != (side, side):
            raise _fail(
                where,
                f"privacy_model.params.{key}",
                f"{study.privacy_model.name} takes {side}x{side} frames (set {key} to the frame "
                f"size), but data.size is {list(study.data.size)}",
            )

    # The farm: names even when disabled, a typo is a typo.
    farm = study.farm
    for i, name in enumerate(farm.adversaries):
        at = f"farm.adversaries[{i}]"
        factory(PRIVACY_MODELS, name, at)
        if farm.pretrained == "torchvision":
            _check_pretrained("torchvision", name, PRIVACY_MODELS, where, at)
        if name in _FIXED_INPUT:
            h, w = study.data.size
            multiple = _FIXED_INPUT[name][1]
            if h != w or h % multiple:
                raise _fail(
                    where,
                    at,
                    f"{name} takes square frames, a multiple of {multiple} px, but data.size is "
                    f"{[h, w]}",
                )
    if farm.reconstruction is not None:
        factory(RECON_MODELS, farm.reconstruction, "farm.reconstruction")
    if farm.action_model is not None:
        factory(ACTION_MODELS, farm.action_model, "farm.action_model")
        # Under STAT the farm hands the fresh model K and F too: only a K-segment model takes them.
        if study.scheme == "attention" and not attention_models(ACTION_MODELS, [farm.action_model]):
            stat = ", ".join(attention_models(ACTION_MODELS, ACTION_MODELS.names()))
            raise _fail(
                where,
                "farm.action_model",
                f"the attention scheme's clips are K segments; {farm.action_model!r} is not a "
                f"K-segment model; use one of: {stat} (or null: the study's)",
            )
    for i, base in enumerate(farm.baselines):
        at = f"farm.baselines[{i}]"
        fn = factory(ENCODERS, base.name, f"{at}.name")
        _check_params(fn, base.params, f"encoder {base.name!r}", where, f"{at}.params")


def _check_pretrained(
    pretrained: str | None, name: str, registry: Any, where: str, at: str
) -> None:
    from privar.models.weights import TORCHVISION_SOURCES

    if pretrained == "torchvision" and name not in TORCHVISION_SOURCES:
        have = ", ".join(n for n in registry.names() if n in TORCHVISION_SOURCES)
        raise _fail(
            where,
            at,
            f"{name!r} has no torchvision weights (pretrained: torchvision); "
            f"give a state-dict file, or use one of: {have}",
        )


def _check_params(
    fn: Callable[..., Any],
    params: Mapping[str, Any],
    what: str,
    where: str,
    at: str,
    reserved: Mapping[str, str] | None = None,
    consumed: int = 0,
    noun: str = "parameter",
) -> None:
    """``params`` against what ``fn`` accepts: unknown keys, reserved keys, plain-type values."""
    reserved = reserved or {}
    acc = accepted_params(fn, consumed)
    for key, value in params.items():
        here = f"{at}.{key}"
        if key in reserved:
            raise _fail(where, here, f"{what}: {key} is set from {reserved[key]}, not here")
        if key not in acc.names:
            if acc.open:
                continue
            takes = ", ".join(sorted(set(acc.names) - set(reserved))) or f"no {noun}s"
            raise _fail(where, here, f"{what} has no {noun} {key!r}; it takes: {takes}")
        problem = _type_problem(value, acc.names[key])
        if problem:
            raise _fail(where, here, f"{what}: {problem}")


# --- what a factory accepts, read from its signature and source ------------------------------


@dataclass(frozen=True)
class Accepted:
    """The keyword arguments a factory takes: ``names`` (name -> annotation, ``Any`` when
    unknown) and ``open``: True when ``**kw`` go somewhere privar cannot see (torchvision), so
    other names may be fine too."""

    names: dict[str, Any]
    open: bool


def accepted_params(fn: Callable[..., Any], consumed: int = 0) -> Accepted:
    """What ``fn`` (a function or a class) accepts by keyword, after its first ``consumed``
    positional parameters. ``**kw`` passed on to a privar class or function are followed there
    (through the call in ``fn``'s source that passes them); anywhere else, ``open`` is True."""
    return _accepted(fn, consumed, frozenset(), 0)


@functools.cache
def _accepted(fn: Any, consumed: int, given: frozenset[str], depth: int) -> Accepted:
    target = fn.__init__ if inspect.isclass(fn) else fn
    if target is _module_init():  # nn.Module's (*args, **kwargs) takes nothing in truth
        return Accepted({}, False)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return Accepted({}, True)
    hints = _hints(fn)
    params = list(sig.parameters.values())
    if inspect.isclass(fn) and params and params[0].name == "self":
        params = params[1:]
    names: dict[str, Any] = {}
    var_kw = None
    positional = 0
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            var_kw = p.name
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
            if positional <= consumed:
                continue
        if p.kind is p.POSITIONAL_ONLY or p.kind is p.VAR_POSITIONAL or p.name in given:
            continue
        names[p.name] = hints.get(p.name, Any)
    if var_kw is None:
        return Accepted(names, False)
    is_open = depth >= 4
    found = False
    for callee, call in [] if is_open else _calls(target):
        if not any(k.arg is None and _is_name(k.value, var_kw) for k in call.keywords):
            continue
        found = True
        if callee is None or any(isinstance(a, ast.Starred) for a in call.args):
            is_open = True
            continue
        given_here = frozenset(k.arg for k in call.keywords if k.arg is not None)
        inner = _accepted(callee, len(call.args), given_here, depth + 1)
        names = {**inner.names, **names}
        is_open = is_open or inner.open
    return Accepted(names, is_open or not found)


def _module_init() -> Any:
    from torch import nn

    return nn.Module.__init__


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _hints(fn: Any) -> dict[str, Any]:
    for obj in (fn.__init__, fn) if inspect.isclass(fn) else (fn,):
        try:
            return typing.get_type_hints(obj)
        except Exception:  # unresolvable annotations: check names only
            continue
    return {}


def _calls(fn: Any) -> list[tuple[Any, ast.Call]]:
    """The calls in ``fn``'s body, each with its callee when that is a privar class or function
    named directly (a global or closure name), else ``None``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return []
    scope = dict(getattr(fn, "__globals__", {}))
    try:
        scope |= inspect.getclosurevars(fn).nonlocals
    except (TypeError, ValueError):
        pass
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            obj = scope.get(node.func.id) if isinstance(node.func, ast.Name) else None
            mine = callable(obj) and getattr(obj, "__module__", "").startswith("privar.")
            out.append((obj if mine else None, node))
    return out


def attention_models(registry: Any, names: Sequence[str]) -> list[str]:
    """Those of ``names`` whose factory constructs a privar model class with
    ``forward_attention`` (the STAT K-segment models), found in the factory's source."""
    return [n for n in names if _constructs_attention(registry.factory(n), 0)]


@functools.cache
def _constructs_attention(fn: Any, depth: int) -> bool:
    if inspect.isclass(fn):
        return callable(getattr(fn, "forward_attention", None))
    if depth >= 3:
        return False
    return any(c is not None and _constructs_attention(c, depth + 1) for c, _ in _calls(fn))


# --- plain-type checks of parameter values -----------------------------------------------------


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit annotation ``hint``, or None (also when ``hint`` is not a plain
    type this can judge)."""
    return None if _fits(value, hint) is not False else f"expected {_show(hint)}, got {value!r}"


def _fits(value: Any, hint: Any) -> bool | None:
    """True / False, or None when ``hint`` is beyond this simple check."""
    if hint is Any or hint is object:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        results = [_fits(value, a) for a in args]
        return True if True in results else (None if None in results else False)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    seq = origin if origin is not None else hint
    if seq in (list, tuple, Sequence):
        if seq is Sequence and isinstance(value, str):  # a str is a sequence of str
            return not args or _fits(value, args[0]) is not False
        if not isinstance(value, list | tuple):
            return False
        if not args:
            return True
        if seq is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                return False
            return _all_fit(value, args)
        return _all_fit(value, [args[0]] * len(value))
    if inspect.isclass(hint) and not args:
        return isinstance(value, hint) or None
    return None


def _all_fit(values: Sequence[Any], hints: Sequence[Any]) -> bool | None:
    results = [_fits(v, h) for v, h in zip(values, hints, strict=True)]
    return False if False in results else (None if None in results else True)


def _show(hint: Any) -> str:
    if inspect.isclass(hint) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


# --- search.space --------------------------------------------------------------------------------

# The `where` of with_overrides while probing the space, stripped again from its messages.
_PROBE = "search.space"


def _check_space(study: Study, where: str) -> None:
    for key, param in study.search.space.items():
        at = f"search.space.{key}"
        for blocked in NOT_SEARCHED:
            if key == blocked or key.startswith(blocked + "."):
                raise _fail(
                    where,
                    at,
                    f"{blocked} is how the study runs, not a trial's "
                    "hyper-parameter; it cannot be searched",
                )
        problem = _key_problem(study, key)
        if problem:
            raise _fail(
                where,
                at,
                f"not a study key ({problem}); a searched key is a dotted "
                "study key as --set takes it, e.g. adversarial.alpha",
            )
        for label, value in _probe_values(param, where, at):
            try:
                probed = with_overrides(study, {key: value}, where=_PROBE)
                _check_resolved(probed, _PROBE)
            except UserError as e:
                inner = str(e).removeprefix(f"{_PROBE}: ").removeprefix(f"{key}: ")
                if "expected int" in inner and param.type in ("uniform", "loguniform"):
                    inner += " (search it with type: int)"
                raise _fail(
                    where, at, f"{label} {value!r} makes an invalid study: {inner}"
                ) from None


def _key_problem(study: Study, key: str) -> str | None:
    """Why dotted ``key`` is not a study key (mirrors :func:`with_overrides`), or None."""
    node: Any = asdict(study)
    *parents, leaf = key.split(".")
    for i, part in enumerate(parents):
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return f"{'.'.join(parents[: i + 1])} is not a section"
    if leaf in node or (parents and parents[-1] in ("params", "options")):
        return None
    section = ".".join(parents) or "the top level"
    return f"{section} has no key {leaf!r}; it has: {', '.join(sorted(node))}"


def _probe_values(param: Param, where: str, at: str) -> list[tuple[str, Any]]:
    """The values that stand for ``param``'s range: each choice, or both ends."""
    if param.type == "choice":
        return [(f"values[{i}]", v) for i, v in enumerate(param.values or [])]
    low, high = param.low, param.high
    if param.type == "int":
        if not (float(low).is_integer() and float(high).is_integer()):  # type: ignore[arg-type]
            raise _fail(where, at, f"an int parameter needs whole low and high, got {low}, {high}")
        return [("low", int(low)), ("high", int(high))]  # type: ignore[arg-type]
    return [("low", float(low)), ("high", float(high))]  # type: ignore[arg-type]
