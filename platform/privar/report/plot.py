"""``pareto.png``: the study's trade-off, drawn with matplotlib (see :mod:`privar.report`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from privar import pareto
from privar.report.rows import Row, front_rows, label, metric, points

if TYPE_CHECKING:  # matplotlib is imported only when drawing
    from matplotlib.axes import Axes
    from matplotlib.text import Annotation

# One marker per baseline, in order of appearance; trials are dots.
BASELINE_MARKERS = ("s", "^", "D", "v", "P", "X", "p", "h", "<", ">")
LABEL_GAP = 0.045  # the least vertical distance between two labels, in axes fractions
LABEL_SIZE = 7.5  # points
LABEL_OFFSET = 0.03  # from a point to its label, in axes fractions
LABEL_BAND = (0.03, 0.97)  # the heights a label's centre may take, in axes fractions


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
    fig = Figure(figsize=(8.0, 6.0), layout="constrained")
    FigureCanvasAgg(fig)
    draw_front(fig.add_subplot(), rows, action_chance, privacy_chance, title)
    fig.savefig(path, format="png", dpi=120)
    return path


def spread(targets: Sequence[float], gap: float, lo: float = 0.0,
           hi: float = 1.0) -> list[float]:  # fmt: skip
    """Positions for labels wanted at ``targets`` (in input order), at least ``gap`` apart and
    within ``[lo, hi]`` where they fit, each moved as little as a two-pass sweep manages: up from
    the lowest, then back down from ``hi``. Labels keep their order."""
    order = sorted(range(len(targets)), key=lambda i: targets[i])
    pos = [float(targets[i]) for i in order]
    for k in range(len(pos)):
        floor = lo if k == 0 else pos[k - 1] + gap
        pos[k] = max(pos[k], floor)
    for k in reversed(range(len(pos))):
        ceiling = hi if k == len(pos) - 1 else pos[k + 1] - gap
        pos[k] = min(pos[k], ceiling)
    out = [0.0] * len(pos)
    for k, i in enumerate(order):
        out[i] = pos[k]
    return out


def _at_least(lo: float, hi: float, span: float = 0.1) -> tuple[float, float]:
    """``(lo, hi)`` widened about its middle to ``span`` when narrower."""
    if hi - lo >= span:
        return lo, hi
    mid = (lo + hi) / 2
    return mid - span / 2, mid + span / 2


def _annotate(ax: Axes, labelled: list[tuple[str, float, float]],
              markers: np.ndarray) -> None:  # fmt: skip
    """Label each ``(text, privacy, action)`` point, the labels spread so they do not overlap:
    to the right of points in the left 60 % of the axes, to the left of the others, each side
    spread vertically (:func:`spread`), joined to its point by a thin line. A label that would
    cover one of the ``markers`` (N, 2) (privacy, action), or another label, then moves up or
    down to the nearest place that covers neither (:func:`_clear_of`)."""
    # Fixed limits, at least MIN_SPAN wide (points that nearly coincide are not zoomed into
    # float noise): the labels' places are worked out in them.
    (x0, x1), (y0, y1) = (_at_least(*ax.get_xlim()), _at_least(*ax.get_ylim()))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    placed = [(t, p, a, (p - x0) / (x1 - x0), (a - y0) / (y1 - y0)) for t, p, a in labelled]
    notes = []
    for right in (True, False):
        side = [item for item in placed if (item[3] < 0.6) == right]
        ys = spread([item[4] for item in side], LABEL_GAP, *LABEL_BAND)
        for (text, p, a, fx, _), y in zip(side, ys, strict=True):
            notes.append(ax.annotate(
                text, (p, a), xytext=(fx + LABEL_OFFSET if right else fx - LABEL_OFFSET, y),
                textcoords="axes fraction", ha="left" if right else "right", va="center",
                fontsize=LABEL_SIZE, zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
                arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.6,
                            "shrinkA": 0, "shrinkB": 3},
            ))  # fmt: skip
    _clear_of(ax, notes, markers)


def _clear_of(ax: Axes, notes: list[Annotation], markers: np.ndarray,
              step: float = LABEL_GAP / 3) -> None:  # fmt: skip
    """Move each annotation in ``notes`` off the ``markers`` (N, 2) (privacy, action) and the
    other notes: up or down by a whole number of ``step`` s (axes fractions), to the nearest
    height in :data:`LABEL_BAND` where its text box (as drawn, in pixels) holds no marker and
    meets no other note's box; a note that finds none stays where :func:`_annotate` put it."""
    from matplotlib.text import Text

    ax.figure.draw_without_rendering()  # lay the figure out: pixel positions are final now
    px = ax.transData.transform(markers) if len(markers) else np.empty((0, 2))
    pad = 3.0  # pixels: about a trial dot's radius

    def box(note):  # the text's own box, not the line to its point
        return Text.get_window_extent(note).padded(pad)  # the figure's own renderer

    lo, hi = LABEL_BAND
    reach = int((hi - lo) / step)
    moves = sorted((k * step for k in range(-reach, reach + 1)), key=abs)  # nearest first
    for i, note in enumerate(notes):
        others = [box(n) for j, n in enumerate(notes) if j != i]
        x, y = note.xyann
        for dy in moves:
            if not lo <= y + dy <= hi:
                continue
            note.xyann = (x, y + dy)
            b = box(note)
            covers = (px[:, 0] > b.x0) & (px[:, 0] < b.x1) & (px[:, 1] > b.y0) & (px[:, 1] < b.y1)
            if not covers.any() and not any(b.overlaps(o) for o in others):
                break
        else:
            note.xyann = (x, y)


def draw_front(
    ax: Axes, rows: Sequence[Row], action_chance: float, privacy_chance: float, title: str
) -> None:
    """Draw the study into ``ax`` (a notebook's axes, or :func:`plot_front`'s).

    x: worst-case privacy accuracy (lower is better), y: action accuracy (higher is better), so
    the good corner is the top left. Every trial is a dot; the front's trials are ringed and
    joined by a step line (the best action accuracy reachable at each privacy leak); the knee is
    starred; each baseline has its own marker; front trials and baselines are labelled by run
    name (:func:`~privar.report.rows.label`), the labels spread apart and off every marker; the
    chance levels are dashed lines. Rows with a missing metric are left out.
    """
    trials = [r for r in rows if r.get("kind") == "trial"]
    pts = points(trials)
    ax.scatter(pts[:, 1], pts[:, 0], s=18, color="tab:blue", alpha=0.45, label="trials")
    labelled: list[tuple[str, float, float]] = []

    front = front_rows(rows)
    if front:
        fp = points(front)
        by_leak = np.argsort(fp[:, 1], kind="stable")
        ax.step(fp[by_leak, 1], fp[by_leak, 0], where="post", color="tab:blue", linewidth=1.5,
                label="Pareto front")  # fmt: skip
        ax.scatter(fp[:, 1], fp[:, 0], s=60, facecolors="none", edgecolors="tab:blue")
        k = pareto.knee(fp)
        ax.scatter(fp[k, 1], fp[k, 0], s=200, marker="*", color="gold", edgecolors="black",
                   zorder=5, label="knee")  # fmt: skip
        labelled += [(label(r), float(p[1]), float(p[0])) for r, p in zip(front, fp, strict=True)]

    baselines = [r for r in rows if r.get("kind") == "baseline"]
    for i, r in enumerate(baselines):
        a, p = metric(r, "action_acc"), metric(r, "privacy_acc")
        if math.isnan(a) or math.isnan(p):
            continue
        marker = BASELINE_MARKERS[i % len(BASELINE_MARKERS)]
        ax.scatter(p, a, s=60, marker=marker, color="tab:red", edgecolors="black", zorder=4,
                   label=label(r))  # fmt: skip
        labelled.append((label(r), p, a))

    ax.axhline(action_chance, color="gray", linestyle="--", linewidth=1, label="action chance")
    ax.axvline(privacy_chance, color="black", linestyle="--", linewidth=1, label="privacy chance")
    ax.set_xlabel("worst-case privacy accuracy (lower is better)")
    ax.set_ylabel("action accuracy")
    ax.set_title(title)
    # Room at the edges for the labels (annotations do not widen the axes).
    ax.margins(x=0.2, y=0.08)
    ax.grid(True, alpha=0.3)
    # Beside the axes, not in them: any corner of the axes can hold a point (a baseline at chance
    # action sits in the lower right).
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    _annotate(ax, labelled, np.array([(p, a) for _, p, a in labelled] + [(p, a) for a, p in pts]))
