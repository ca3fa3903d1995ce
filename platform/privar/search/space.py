"""A study's search space as Optuna define-by-run suggestions, and back to study overrides.

Pure functions over Optuna objects only (no Ray), unit-tested in ``tests/test_search_space.py``.
Space keys are dotted study keys, exactly as ``--set`` takes them (``adversarial.alpha``,
``encoder.params.levels``), so a sampled configuration is applied with
:func:`privar.study.with_overrides` and checked like a study file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import optuna

from privar.study import Param

#: The two objectives of every search, in Optuna's order: action accuracy up, leak down.
OBJECTIVES: tuple[tuple[str, str], ...] = (("action_acc", "max"), ("privacy_acc", "min"))


def _label(value: Any) -> Any:
    """Optuna's categorical choices must be None, bool, int, float or str: anything else (a
    resolution ``[12, 16]``) is offered as its JSON text and decoded back by :func:`decode`."""
    return value if value is None or isinstance(value, bool | int | float | str) else (
        json.dumps(value))  # fmt: skip


def suggest(trial: optuna.Trial, space: Mapping[str, Param]) -> None:
    """Ask ``trial`` for one value per space entry (define-by-run, for Ray's ``OptunaSearch``)."""
    for key, p in space.items():
        if p.type == "choice":
            trial.suggest_categorical(key, [_label(v) for v in p.values])
        elif p.type == "int":
            trial.suggest_int(key, int(p.low), int(p.high), log=p.log)
        else:
            trial.suggest_float(key, p.low, p.high, log=p.type == "loguniform" or p.log)


def decode(config: Mapping[str, Any], space: Mapping[str, Param]) -> dict[str, Any]:
    """The sampled ``config`` as study overrides: choice labels turned back into their values."""
    out = {}
    for key, p in space.items():
        value = config[key]
        if p.type == "choice":
            value = next(v for v in p.values if _label(v) == value)
        out[key] = value
    return out


def make_sampler(name: str, seed: int, num_trials: int) -> optuna.samplers.BaseSampler:
    """A multi-objective Optuna sampler by name: ``tpe`` (MOTPE), ``nsga2``, ``gp`` or ``random``.

    NSGA-II's population is sized to the budget: with its default of 50, a study of 8 trials
    would only ever see the random first generation."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "nsga2":
        population = min(50, max(2, num_trials // 2))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if name == "gp":
        startup = min(10, max(2, num_trials // 2))
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}")
