"""Racing the privacy adversaries: successive halving, as pure arithmetic.

A candidate's worst-case leak needs its strongest adversary, not every adversary fully
trained. Successive halving (Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and
Hyperparameter Optimization", AISTATS 2016; the inner loop of Li et al., "Hyperband", JMLR 2018)
trains every adversary to a first rung of ``min_epochs`` epochs, keeps the best ``1 / eta`` of
them (by :func:`score`: validation privacy accuracy, then cross-entropy), trains those on to
``eta`` times as many epochs, and so on; once one adversary is left it trains on to the farm's
full ``epochs``. A rung's survivors go on from where they stopped, so a survivor's training is
exactly the full farm's, and a race's worst case, the best of its survivors, is never above the
full farm's: a race that stops the adversary that would have learnt most errs one way only,
making the encoder look more private than it is. On the synthetic set every race at 0.4 of
the adversary-epochs or fewer missed the full farm's worst case by more than 0.02 on some seed
(by up to 0.04 to 0.25, whichever farm and schedule; ``benchmarks/racing_curves.py``), on a
farm of 30 epochs as on one of 10: the adversary that learns first is seldom the one that ends
strongest.

Example: 4 adversaries, 10 epochs, ``eta`` 2, ``min_epochs`` 1: rungs end at epochs 1, 2, 10
with 4, 2, 1 adversaries training, 4 + 2 + 8 = 14 adversary-epochs of the full farm's 40.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    """A stretch of the race: ``alive`` adversaries each train on up to epoch ``until``."""

    until: int
    alive: int


def keep(alive: int, eta: int) -> int:
    """How many of ``alive`` adversaries go on to the next rung: the best ``1 / eta``, rounded
    up (one adversary at least)."""
    return max(1, math.ceil(alive / eta))


def schedule(num: int, epochs: int, eta: int, min_epochs: int) -> tuple[Rung, ...]:
    """The race of ``num`` adversaries for a farm of ``epochs`` epochs: rungs ending at
    ``min_epochs * eta**k`` epochs while more than one adversary is left, then one rung to
    ``epochs``. Rung k has ``keep`` applied k times to ``num`` adversaries. One adversary, or
    ``epochs <= min_epochs``, is one rung: the full farm."""
    if num < 1 or epochs < 1 or eta < 2 or min_epochs < 1:
        raise ValueError(f"schedule: num, epochs, min_epochs >= 1 and eta >= 2 required, got "
                         f"{num}, {epochs}, {min_epochs} and {eta}")  # fmt: skip
    rungs, alive, until = [], num, min_epochs
    while alive > 1 and until < epochs:
        rungs.append(Rung(until, alive))
        alive, until = keep(alive, eta), until * eta
    rungs.append(Rung(epochs, alive))
    return tuple(rungs)


def adversary_epochs(rungs: Sequence[Rung]) -> int:
    """Epochs of adversary training the race spends: each rung's ``alive`` times its length
    (``until`` minus the previous rung's)."""
    starts = (0, *(r.until for r in rungs[:-1]))
    return sum(r.alive * (r.until - start) for r, start in zip(rungs, starts, strict=True))


def compute_fraction(rungs: Sequence[Rung]) -> float:
    """The race's adversary-epochs over the full farm's, ``rungs[0].alive * rungs[-1].until``:
    1 for a race of one rung."""
    return adversary_epochs(rungs) / (rungs[0].alive * rungs[-1].until)


def score(metrics: Mapping[str, float]) -> tuple[float, float, float]:
    """What a race ranks an adversary by, from its validation metrics after a rung: its
    worst-case figure (the larger of ``privacy_acc`` and ``privacy_acc_clip``, as the farm's
    ``privacy_acc_worst`` takes it), then ``privacy_acc``, then ``-privacy_nll`` (per-frame
    cross-entropy, lowest first): early rungs often find every adversary at chance accuracy,
    and the loss still says which learnt more."""
    return (max(metrics["privacy_acc"], metrics["privacy_acc_clip"]), metrics["privacy_acc"],
            -metrics["privacy_nll"])  # fmt: skip


def survivors(scores: Sequence[Sequence[float]], count: int) -> list[int]:
    """The indices of the ``count`` best ``scores`` (each compared as a tuple, highest first),
    in their original order. Ties go to the earlier index, so a race is reproducible."""
    ranked = sorted(range(len(scores)), key=lambda i: (tuple(-s for s in scores[i]), i))
    return sorted(ranked[:count])


__all__ = ["Rung", "adversary_epochs", "compute_fraction", "keep", "schedule", "score", "survivors"]
