"""The study's runs as rows, and which of them are on the front (see :mod:`privar.report`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from privar import pareto
from privar.tracking.names import short_params

Row = Mapping[str, Any]


def metric(row: Row, key: str) -> float:
    """``row[key]`` as a float; NaN when missing or None."""
    value = row.get(key)
    return math.nan if value is None else float(value)


def points(rows: Sequence[Row], action_key: str = "action_acc",
           privacy_key: str = "privacy_acc") -> np.ndarray:  # fmt: skip
    """``(N, 2)`` (action, privacy) points of ``rows``, NaN where a metric is missing."""
    return np.array(
        [(metric(r, action_key), metric(r, privacy_key)) for r in rows], dtype=np.float64
    ).reshape(-1, 2)


def format_params(params: Mapping[str, Any]) -> str:
    """``{"adversarial.alpha": 2.0, "encoder.levels": 16}`` -> ``"alpha=2 levels=16"``.

    Keys are shortened to their last dotted part unless two keys would then collide; floats get
    4 significant digits; keys are sorted, so the same parameters always print the same way.
    """
    return short_params(params, digits=4)


def label(row: Row) -> str:
    """What a reader calls the row: its run name, else its encoder and parameters."""
    if row.get("name"):
        return str(row["name"])
    return " ".join(s for s in (str(row["encoder"]), format_params(row.get("params") or {})) if s)


def mark_front(
    rows: Iterable[Row], action_key: str = "action_acc", privacy_key: str = "privacy_acc"
) -> list[dict[str, Any]]:
    """Copies of ``rows`` with ``on_front`` set: True for the non-dominated trials.

    The front is computed over the rows with ``kind == "trial"`` only; every other row (the
    baselines) gets ``on_front = False``. ``action_key`` and ``privacy_key`` name the metrics to
    use (e.g. ``"action_acc_fresh"``, ``"privacy_acc_worst"``). The input rows are not modified.
    """
    out = [dict(r) for r in rows]
    trials = [r for r in out if r.get("kind") == "trial"]
    mask = pareto.non_dominated(points(trials, action_key, privacy_key))
    for r in out:
        r["on_front"] = False
    for r, on in zip(trials, mask, strict=True):
        r["on_front"] = bool(on)
    return out


def front_rows(rows: Sequence[Row]) -> list[Row]:
    """The rows marked ``on_front``, by action accuracy, best first (the ``pareto-N`` order)."""
    # Sorted, not recomputed: ``on_front`` is the caller's word (it may have used other metric
    # keys in mark_front). A marked row without both metrics cannot be placed, and is dropped.
    front = [
        r
        for r in rows
        if r.get("on_front")
        and not math.isnan(metric(r, "action_acc"))
        and not math.isnan(metric(r, "privacy_acc"))
    ]
    return sorted(front, key=lambda r: -metric(r, "action_acc"))  # stable: ties keep order


def knee_run_id(rows: Sequence[Row]) -> str | None:
    """``run_id`` of the front's knee (:func:`privar.pareto.knee`), None for an empty front."""
    front = front_rows(rows)
    if not front:
        return None
    return front[pareto.knee(points(front))]["run_id"]
