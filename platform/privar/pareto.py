"""Pareto math of the (action accuracy, privacy accuracy) trade-off, in plain numpy.

A point is ``(action_acc, privacy_acc)``: the action accuracy of a candidate encoder, to be
maximised, and the worst-case privacy accuracy the adversary farm reached on it, to be minimised
(DESIGN.md, "Data flow" step 4). Every function takes ``points`` as an array-like of shape
``(N, 2)`` in that column order, in accuracy units ([0, 1]), and returns indices into it, so the
caller can map results back to its runs.

Dominance: ``p`` dominates ``q`` when ``p.action >= q.action`` and ``p.privacy <= q.privacy``
with at least one of the two strict. Conventions shared by every function here:

* A row with a NaN (or any non-finite) coordinate is a run whose metric is missing: it is never
  on the front and never dominates anything.
* Two identical points do not dominate each other, so duplicates are both on the front (two
  trials that reach the same trade-off are both worth keeping; the caller may de-duplicate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

ACTION, PRIVACY = 0, 1  # column indices of a point


def _as_points(points: ArrayLike) -> np.ndarray:
    """``points`` as a float64 ``(N, 2)`` array; ``ValueError`` for any other shape."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {arr.shape}")
    return arr


def non_dominated(points: ArrayLike) -> np.ndarray:
    """Mask of the points on the Pareto front.

    Args:
        points: ``(N, 2)``, columns (action accuracy, privacy accuracy).

    Returns:
        ``(N,)`` bool: True where no other point dominates the row. NaN rows are False;
        duplicated points are all True (see the module docstring).

    O(N^2) time and memory (an ``(N, N)`` comparison): a study has hundreds of trials, not
    millions, and the all-pairs form is the definition written out.
    """
    pts = _as_points(points)
    valid = np.isfinite(pts).all(axis=1)
    a, p = pts[:, ACTION], pts[:, PRIVACY]
    # [i, j]: does point j dominate point i? Comparisons with NaN are False, so a NaN row
    # dominates nothing.
    no_worse = (a[None, :] >= a[:, None]) & (p[None, :] <= p[:, None])
    better = (a[None, :] > a[:, None]) | (p[None, :] < p[:, None])
    dominated = (no_worse & better).any(axis=1)
    return valid & ~dominated


def ranks(points: ArrayLike) -> np.ndarray:
    """Non-dominated sorting (Deb et al. 2002, NSGA-II's fronts): each point's layer.

    Layer 1 is the front (:func:`non_dominated`); layer 2 is the front of what remains once
    layer 1 is taken away, and so on: a point's rank is how many fronts must be peeled off
    before it is non-dominated.

    Args:
        points: ``(N, 2)``, columns (action accuracy, privacy accuracy).

    Returns:
        ``(N,)`` int: 1-based layers; 0 for a row with a non-finite coordinate (a missing
        metric ranks nowhere). Duplicated points share their layer.

    At most N peels of an O(N^2) comparison: fine for a study's hundreds of trials.
    """
    pts = _as_points(points)
    out = np.zeros(len(pts), dtype=np.int64)
    left = np.flatnonzero(np.isfinite(pts).all(axis=1))
    layer = 0
    while len(left):
        layer += 1
        on = non_dominated(pts[left])
        out[left[on]] = layer
        left = left[~on]
    return out


def rank_among(points: ArrayLike, ranked: ArrayLike, ranked_layers: ArrayLike) -> np.ndarray:
    """The layer each of ``points`` would sit in among ``ranked`` (whose layers are
    ``ranked_layers``, from :func:`ranks`), without changing theirs: one more than the deepest
    layer of a ranked point that dominates it, or 1 when none does. A baseline gets its place
    beside a study's trials this way, and the trials keep the layers they earned.

    Args:
        points: ``(M, 2)``, the points to place.
        ranked: ``(N, 2)``, the ranked points; rows with layer 0 (unranked) are ignored.
        ranked_layers: ``(N,)`` their layers.

    Returns:
        ``(M,)`` int: 1-based layers; 0 for a row of ``points`` with a non-finite coordinate.
    """
    pts, ref = _as_points(points), _as_points(ranked)
    layers = np.asarray(ranked_layers, dtype=np.int64).reshape(-1)
    if len(layers) != len(ref):
        raise ValueError(f"{len(ref)} ranked points but {len(layers)} layers")
    a, p = pts[:, ACTION][:, None], pts[:, PRIVACY][:, None]
    ra, rp = ref[:, ACTION][None, :], ref[:, PRIVACY][None, :]
    # [i, j]: does ranked point j dominate point i?
    dominates = (ra >= a) & (rp <= p) & ((ra > a) | (rp < p)) & (layers[None, :] > 0)
    deepest = np.where(dominates, layers[None, :], 0).max(axis=1, initial=0)
    return np.where(np.isfinite(pts).all(axis=1), deepest + 1, 0)


def front_order(points: ArrayLike) -> list[int]:
    """Indices of the front's points, by action accuracy, best first.

    Ties (duplicated points, the only way two front points share an action accuracy) keep
    their input order. This is the order of the registry aliases ``pareto-1``, ``pareto-2``...

    Args:
        points: ``(N, 2)``, columns (action accuracy, privacy accuracy).

    Returns:
        Indices into ``points``; empty when no point is valid.
    """
    pts = _as_points(points)
    idx = np.flatnonzero(non_dominated(pts))
    # A stable sort on the negated action: descending, ties in input order.
    order = np.argsort(-pts[idx, ACTION], kind="stable")
    return [int(i) for i in idx[order]]


def hypervolume(points: ArrayLike, ref: Sequence[float]) -> float:
    """Area of the (action, privacy) region that the points dominate, bounded by ``ref``.

    The region is the union over points ``(a, p)`` of the boxes ``[ref_a, a] x [p, ref_p]``
    (Zitzler & Thiele 1998's S-metric, in 2-D). Larger is better.

    Args:
        points: ``(N, 2)``, columns (action accuracy, privacy accuracy); dominated and NaN rows
            may be included, they add nothing.
        ref: ``(ref_action, ref_privacy)``, the worst corner; normally ``(action_chance, 1.0)``:
            an encoder no better than guessing the action, and one that leaks privacy completely.
            A point with ``a <= ref_action`` or ``p >= ref_privacy`` contributes nothing.

    Returns:
        The area in accuracy x accuracy units; at most ``(1 - ref_action) * ref_privacy`` for
        accuracies in [0, 1]. 0.0 for no contributing point.
    """
    pts = _as_points(points)
    ref_a, ref_p = (float(v) for v in ref)
    if not (np.isfinite(ref_a) and np.isfinite(ref_p)):
        raise ValueError(f"ref must be two finite numbers, got {tuple(ref)}")
    keep = np.isfinite(pts).all(axis=1) & (pts[:, ACTION] > ref_a) & (pts[:, PRIVACY] < ref_p)
    pts = pts[keep]
    if len(pts) == 0:
        return 0.0
    # Sweep privacy upwards. Between consecutive privacy values p_i <= x < p_{i+1}, the boxes
    # that cover x are those of the points with p <= x, so the covered action span is
    # [ref_a, best action so far]. Dominated points never raise the running best: no front needed.
    pts = pts[np.argsort(pts[:, PRIVACY], kind="stable")]
    best_action = np.maximum.accumulate(pts[:, ACTION])
    widths = np.diff(np.append(pts[:, PRIVACY], ref_p))
    return float(np.sum((best_action - ref_a) * widths))


def knee(points: ArrayLike) -> int:
    """Index of the front's knee: the best-balanced trade-off.

    Definition (the "maximum distance to the extremes' line" knee of Das 1999, "On
    characterizing the 'knee' of the Pareto curve based on Normal-Boundary Intersection", also
    the Kneedle rule of Satopaa et al. 2011): normalise each axis over the front, action to
    ``u = (a - a_min) / (a_max - a_min)`` and privacy to ``v = (p_max - p) / (p_max - p_min)``,
    both "1 = best"; the front's two extremes are then (0, 1) and (1, 0), and the knee is the
    front point farthest beyond the line joining them, towards the utopia point (1, 1). That
    signed distance is ``(u + v - 1) / sqrt(2)``, so the knee maximises ``u + v``.

    Normalising over the front makes the choice independent of units and of the reference
    point: it is relative to what the study achieved. Ties, which a front of two points always
    has (both extremes lie on the line), go to the lower privacy leak (privacy is the reason
    for the encoder), then the higher action accuracy, then the lower index. A front of one
    point is its own knee.

    Args:
        points: ``(N, 2)``, columns (action accuracy, privacy accuracy).

    Returns:
        An index into ``points`` (not into the front).

    Raises:
        ValueError: no valid (finite) point, hence no front.
    """
    pts = _as_points(points)
    idx = np.flatnonzero(non_dominated(pts))
    if len(idx) == 0:
        raise ValueError("no finite point, so no Pareto front and no knee")
    a, p = pts[idx, ACTION], pts[idx, PRIVACY]
    # A zero span happens only when every front point is the same duplicate: all scores are
    # then equal and the tie-break decides.
    a_span = (a.max() - a.min()) or 1.0
    p_span = (p.max() - p.min()) or 1.0
    score = (a - a.min()) / a_span + (p.max() - p) / p_span
    # Round so that points on one line (equal scores up to float error) count as ties.
    score = np.round(score, 12)
    # np.lexsort sorts by its last key first: score (descending), then privacy (ascending),
    # then action (descending); lexsort is stable, so the lower index wins a full tie.
    best = np.lexsort((-a, p, -score))[0]
    return int(idx[best])
