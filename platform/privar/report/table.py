"""The front as a fixed-width text table and as ``pareto.csv`` (see :mod:`privar.report`)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from privar import pareto
from privar.report.rows import Row, format_params, front_rows, knee_run_id, metric, points

# Accuracies are printed with 3 decimals: a test set of a few thousand clips does not resolve
# the fourth.
ACC_FMT = "{:.3f}"
PARAMS_WIDTH = 48  # the table's params column is cut beyond this many characters
IN_LOOP = ("action_acc", "privacy_acc")  # the metric names of rows the farm did not place


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(rows: Sequence[Row], action_chance: float, privacy_chance: float) -> str:
    """The front as a fixed-width text table, best action accuracy first.

    One line per front trial: rank, a ``*`` on the knee, encoder, its key parameters, action
    accuracy, worst-case privacy accuracy, reconstruction PSNR in dB (``-`` when not run). The
    header names the chance levels, the hypervolume (reference ``(action_chance, 1.0)``) and how
    many of the trials are on the front. ``rows`` must carry ``on_front`` (see
    :func:`~privar.report.mark_front`).
    """
    front = front_rows(rows)
    trials = [r for r in rows if r.get("kind") == "trial"]
    hv = pareto.hypervolume(points(front), ref=(action_chance, 1.0))
    header = (
        f"Pareto front: {len(front)} of {len(trials)} trials; chance: action "
        f"{ACC_FMT.format(action_chance)}, privacy {ACC_FMT.format(privacy_chance)}; "
        f"hypervolume {hv:.4f} (ref: action at chance, privacy 1.0)"
    )
    if not front:
        return header + "\n(no trial on the front)\n"

    knee_id = knee_run_id(front)
    titles = ("#", "", "encoder", "params", "action", "privacy (worst)", "PSNR (dB)")
    right = (True, False, False, False, True, True, True)  # numbers right-aligned
    lines = []
    for rank, r in enumerate(front, start=1):
        psnr = r.get("recon_psnr")
        lines.append(
            (
                str(rank),
                "*" if r["run_id"] == knee_id else "",
                str(r["encoder"]),
                _cut(format_params(r.get("params") or {}), PARAMS_WIDTH),
                ACC_FMT.format(metric(r, "action_acc")),
                ACC_FMT.format(metric(r, "privacy_acc")),
                "-" if psnr is None or math.isnan(psnr) else f"{float(psnr):.2f}",
            )
        )
    widths = [max(len(t), *(len(line[i]) for line in lines)) for i, t in enumerate(titles)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    body = [fmt(titles), "  ".join("-" * w for w in widths)] + [fmt(line) for line in lines]
    return "\n".join([header, *body, "* knee: the best-balanced trade-off"]) + "\n"


def csv_columns(metrics: tuple[str, str] = IN_LOOP) -> tuple[str, ...]:
    """The columns of ``pareto.csv``, in order; the two accuracies are named by ``metrics``,
    the MLflow metrics they are (``("action_acc_fresh", "privacy_acc_worst")`` after the farm).
    ``params`` is one JSON object, so the columns stay the same whatever a study searches."""
    return ("rank", "trial", "run_id", "run_name", "encoder", *metrics, "recon_psnr", "knee",
            "params")  # fmt: skip


def _csv_number(value: Any) -> str:
    # repr keeps every digit of a float; an empty cell for a metric that was not measured.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def write_csv(rows: Sequence[Row], path: str | Path, metrics: tuple[str, str] = IN_LOOP) -> Path:
    """Write the front to ``path`` (``pareto.csv``): one line per front trial, best action first.

    Columns: :func:`csv_columns` of ``metrics``. ``rank`` is 1-based (the ``pareto-N`` alias),
    ``trial`` the search's trial id, ``run_name`` the MLflow run's name, ``knee`` 1 on the knee
    and 0 elsewhere, ``params`` a JSON object of the sampled values with sorted keys;
    ``recon_psnr`` is empty when not measured. An empty front writes the header alone. Returns
    the path.
    """
    path = Path(path)
    front = front_rows(rows)
    knee_id = knee_run_id(front)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_columns(metrics))
        for rank, r in enumerate(front, start=1):
            writer.writerow(
                (
                    rank,
                    r.get("trial", ""),
                    r["run_id"],
                    r.get("name", ""),
                    r["encoder"],
                    _csv_number(r.get("action_acc")),
                    _csv_number(r.get("privacy_acc")),
                    _csv_number(r.get("recon_psnr")),
                    int(r["run_id"] == knee_id),
                    json.dumps(dict(r.get("params") or {}), sort_keys=True, default=str),
                )
            )
    return path
