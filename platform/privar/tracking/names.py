"""What a reader sees of a run in the MLflow UI: its name, and its settings as flat params.

Pure functions, no MLflow (unit-tested in ``tests/test_tracking_runs.py``):

* run names: a trial by its number and sampled values (``t3 alpha=1.11 levels=4``), a baseline by
  its encoder and parameters (``identity``, ``downsample size=8``), made distinct by
  :func:`distinct` when two would read the same;
* :func:`flatten`: any nest of dataclasses and mappings as dotted keys (``train.lr``,
  ``encoder.params.levels``), the way a study file names them;
* :func:`param_text`: a value as MLflow param text, cut to MLflow's length limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

#: MLflow 3's longest param value (``mlflow.utils.validation.MAX_PARAM_VAL_LENGTH``).
MAX_PARAM_LENGTH = 6000
CUT = "..."


def format_value(value: Any, digits: int = 3) -> str:
    """A parameter's value for a name or a table: floats with ``digits`` significant digits,
    a resolution ``(12, 16)`` as ``12x16``, anything else as ``str``."""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, list | tuple):
        return "x".join(format_value(v, digits) for v in value)
    return str(value)


def short_params(params: Mapping[str, Any], digits: int = 3) -> str:
    """``{"adversarial.alpha": 1.1093, "encoder.params.levels": 4}`` -> ``"alpha=1.11 levels=4"``.

    Each key is shortened to its last dotted component unless two keys would then read the
    same (both are then written in full); keys are sorted by their full name, so the same
    parameters always print the same way."""
    short = {k: k.rsplit(".", 1)[-1] for k in params}
    clash = len(set(short.values())) < len(short)
    return " ".join(
        f"{k if clash else short[k]}={format_value(params[k], digits)}" for k in sorted(params)
    )


def trial_run_name(number: int, params: Mapping[str, Any]) -> str:
    """A trial's run name: ``t<number>`` and its sampled values, ``t3 alpha=1.11 levels=4``."""
    return " ".join(s for s in (f"t{number}", short_params(params)) if s)


def baseline_run_name(encoder: str, params: Mapping[str, Any]) -> str:
    """A baseline's run name: its encoder and parameters, ``downsample size=8``; ``identity``."""
    return " ".join(s for s in (encoder, short_params(params)) if s)


def distinct(names: Iterable[str]) -> list[str]:
    """``names`` with every repeat made distinct: ``["a", "a", "b"]`` -> ``["a", "a (2)",
    "b"]`` (a suffix that is itself taken is skipped)."""
    out: list[str] = []
    taken: set[str] = set()
    for name in names:
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name} ({n})"
        taken.add(unique)
        out.append(unique)
    return out


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nest of dataclasses and mappings as ``{dotted key: leaf}``.

    ``flatten(TrainConfig(lr=0.003, ...), "train")`` -> ``{"train.lr": 0.003, ...}``; a mapping
    ``{"levels": 4}`` under ``"encoder.params"`` gives ``encoder.params.levels``. Lists, tuples
    and other values are leaves; an empty dataclass or mapping gives no key."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif isinstance(value, Mapping):
        items = list(value.items())
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def param_text(value: Any) -> str:
    """``value`` as an MLflow param: tuples written as lists (as YAML shows them), and text
    longer than MLflow accepts cut, ending in ``...``."""
    if isinstance(value, tuple):
        value = list(value)
    text = str(value)
    if len(text) > MAX_PARAM_LENGTH:
        text = text[: MAX_PARAM_LENGTH - len(CUT)] + CUT
    return text
