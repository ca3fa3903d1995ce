"""The Pareto front of a study as a text table, ``pareto.csv`` and ``pareto.png``.

No MLflow here: the caller reads the study's runs back and passes plain rows, one dict per run:

=================  ==========================================================================
``run_id``         the MLflow run id (str)
``kind``           ``"trial"`` (a searched candidate) or ``"baseline"`` (identity, downsample...)
``encoder``        the encoder's registry name (str)
``params``         the key parameters, dotted study names: ``{"adversarial.alpha": 2.0}``
``action_acc``     action accuracy in [0, 1] (the fresh action model's, after the farm)
``privacy_acc``    worst-case privacy accuracy in [0, 1] (``privacy_acc_worst``)
``recon_psnr``     optional: the reconstruction attack's PSNR in dB (None or absent: not run)
``on_front``       bool, set by :func:`mark_front`
=================  ==========================================================================

Only trials can be on the front: the front is the set of candidates the search offers, and
:func:`mark_front` ignores baselines. Baselines are drawn on the plot for reference (what no
privacy and naive privacy cost), never listed in the table or the CSV. A missing metric (None,
NaN) keeps a row off the front.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from privar import pareto

if TYPE_CHECKING:  # matplotlib is imported only when drawing
    from matplotlib.axes import Axes

Row = Mapping[str, Any]

#: The columns of ``pareto.csv``, in order. ``params`` is one JSON object, so the columns stay
#: the same whatever parameters a study searches.
CSV_COLUMNS = (
    "rank",
    "run_id",
    "encoder",
    "action_acc",
    "privacy_acc",
    "recon_psnr",
    "knee",
    "params",
)

# Accuracies are printed with 3 decimals: a test set of a few thousand clips does not resolve
# the fourth.
ACC_FMT = "{:.3f}"
PARAMS_WIDTH = 48  # the table's params column is cut beyond this many characters


def _metric(row: Row, key: str) -> float:
    """``row[key]`` as a float; NaN when missing or None."""
    value = row.get(key)
    return math.nan if value is None else float(value)


def _points(rows: Sequence[Row], action_key: str, privacy_key: str) -> np.ndarray:
    """``(N, 2)`` (action, privacy) points of ``rows``, NaN where a metric is missing."""
    return np.array(
        [(_metric(r, action_key), _metric(r, privacy_key)) for r in rows], dtype=np.float64
    ).reshape(-1, 2)


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
    mask = pareto.non_dominated(_points(trials, action_key, privacy_key))
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
        and not math.isnan(_metric(r, "action_acc"))
        and not math.isnan(_metric(r, "privacy_acc"))
    ]
    return sorted(front, key=lambda r: -_metric(r, "action_acc"))  # stable: ties keep order


def knee_run_id(rows: Sequence[Row]) -> str | None:
    """``run_id`` of the front's knee (:func:`privar.pareto.knee`), None for an empty front."""
    front = front_rows(rows)
    if not front:
        return None
    return front[pareto.knee(_points(front, "action_acc", "privacy_acc"))]["run_id"]


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "x".join(_format_value(v) for v in value)  # a resolution (12, 16) -> 12x16
    return str(value)


def format_params(params: Mapping[str, Any]) -> str:
    """``{"adversarial.alpha": 2.0, "encoder.levels": 16}`` -> ``"alpha=2 levels=16"``.

    Keys are shortened to their last dotted part unless two keys would then collide; floats get
    4 significant digits; keys are sorted, so the same parameters always print the same way.
    """
    short = {k: k.rsplit(".", 1)[-1] for k in params}
    clash = len(set(short.values())) < len(short)
    return " ".join(
        f"{k if clash else short[k]}={_format_value(params[k])}" for k in sorted(params)
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(rows: Sequence[Row], action_chance: float, privacy_chance: float) -> str:
    """The front as a fixed-width text table, best action accuracy first.

    One line per front trial: rank, a ``*`` on the knee, encoder, its key parameters, action
    accuracy, worst-case privacy accuracy, reconstruction PSNR in dB (``-`` when not run). The
    header names the chance levels, the hypervolume (reference ``(action_chance, 1.0)``) and how
    many of the trials are on the front. ``rows`` must carry ``on_front`` (see
    :func:`mark_front`).
    """
    front = front_rows(rows)
    trials = [r for r in rows if r.get("kind") == "trial"]
    hv = pareto.hypervolume(_points(front, "action_acc", "privacy_acc"), ref=(action_chance, 1.0))
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
                ACC_FMT.format(_metric(r, "action_acc")),
                ACC_FMT.format(_metric(r, "privacy_acc")),
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


def _csv_number(value: Any) -> str:
    # repr keeps every digit of a float; an empty cell for a metric that was not measured.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def write_csv(rows: Sequence[Row], path: str | Path) -> Path:
    """Write the front to ``path`` (``pareto.csv``): one line per front trial, best action first.

    Columns: :data:`CSV_COLUMNS`. ``rank`` is 1-based (the ``pareto-N`` alias), ``knee`` is 1
    on the knee and 0 elsewhere, ``params`` is a JSON object with sorted keys, ``recon_psnr``
    is empty when not measured. An empty front writes the header alone. Returns the path.
    """
    path = Path(path)
    front = front_rows(rows)
    knee_id = knee_run_id(front)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for rank, r in enumerate(front, start=1):
            writer.writerow(
                (
                    rank,
                    r["run_id"],
                    r["encoder"],
                    _csv_number(r.get("action_acc")),
                    _csv_number(r.get("privacy_acc")),
                    _csv_number(r.get("recon_psnr")),
                    int(r["run_id"] == knee_id),
                    json.dumps(dict(r.get("params") or {}), sort_keys=True, default=str),
                )
            )
    return path


# One marker per baseline, in order of appearance; trials are dots.
BASELINE_MARKERS = ("s", "^", "D", "v", "P", "X", "p", "h", "<", ">")


def plot_front(
    rows: Sequence[Row],
    path: str | Path,
    action_chance: float,
    privacy_chance: float,
    title: str,
) -> Path:
    """Draw the study (:func:`draw_front`) to ``path`` (``pareto.png``); returns the path.

    Uses matplotlib's Agg canvas on a bare ``Figure``, not pyplot: no display, no global figure
    state, safe in a Ray worker or a test.
    """
    # Imported here: matplotlib is only needed to draw, and it is slow to import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(7.0, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    draw_front(fig.add_subplot(), rows, action_chance, privacy_chance, title)
    fig.savefig(path, format="png", dpi=120)
    return path


def draw_front(
    ax: Axes, rows: Sequence[Row], action_chance: float, privacy_chance: float, title: str
) -> None:
    """Draw the study into ``ax`` (a notebook's axes, or :func:`plot_front`'s).

    x: worst-case privacy accuracy (lower is better), y: action accuracy (higher is better), so
    the good corner is the top left. Every trial is a dot; the front's trials are ringed and
    joined by a step line (the best action accuracy reachable at each privacy leak); the knee is
    starred; each baseline has its own marker and a label (encoder and parameters); the chance
    levels are dashed lines. Rows with a missing metric are left out.
    """
    trials = [r for r in rows if r.get("kind") == "trial"]
    pts = _points(trials, "action_acc", "privacy_acc")
    ax.scatter(pts[:, 1], pts[:, 0], s=18, color="tab:blue", alpha=0.45, label="trials")

    front = front_rows(rows)
    if front:
        fp = _points(front, "action_acc", "privacy_acc")
        by_leak = np.argsort(fp[:, 1], kind="stable")
        ax.step(
            fp[by_leak, 1],
            fp[by_leak, 0],
            where="post",
            color="tab:blue",
            linewidth=1.5,
            label="Pareto front",
        )
        ax.scatter(fp[:, 1], fp[:, 0], s=60, facecolors="none", edgecolors="tab:blue")
        k = pareto.knee(fp)
        ax.scatter(
            fp[k, 1],
            fp[k, 0],
            s=200,
            marker="*",
            color="gold",
            edgecolors="black",
            zorder=5,
            label="knee",
        )

    baselines = [r for r in rows if r.get("kind") == "baseline"]
    for i, r in enumerate(baselines):
        a, p = _metric(r, "action_acc"), _metric(r, "privacy_acc")
        if math.isnan(a) or math.isnan(p):
            continue
        name = " ".join(s for s in (str(r["encoder"]), format_params(r.get("params") or {})) if s)
        marker = BASELINE_MARKERS[i % len(BASELINE_MARKERS)]
        ax.scatter(
            p, a, s=60, marker=marker, color="tab:red", edgecolors="black", zorder=4, label=name
        )
        ax.annotate(name, (p, a), xytext=(6, 4), textcoords="offset points", fontsize=8)

    ax.axhline(action_chance, color="gray", linestyle="--", linewidth=1, label="action chance")
    ax.axvline(privacy_chance, color="black", linestyle="--", linewidth=1, label="privacy chance")
    ax.set_xlabel("worst-case privacy accuracy (lower is better)")
    ax.set_ylabel("action accuracy")
    ax.set_title(title)
    # Room at the edges for the baselines' labels (annotations do not widen the axes).
    ax.margins(x=0.12, y=0.06)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
