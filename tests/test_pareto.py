"""Pareto math on hand-made fronts, with hypervolumes worked out by hand, and brute-force
cross-checks (an explicit loop for dominance, a fine grid for the area)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privar.pareto import front_order, hypervolume, knee, non_dominated, rank_among, ranks

NAN = math.nan

# The running example: (0.5, 0.5) is dominated by (0.8, 0.3) (more action, less leak).
EXAMPLE = [(0.8, 0.3), (0.6, 0.1), (0.5, 0.5)]


# --- non_dominated ------------------------------------------------------------------------------


def test_dominated_point_is_off_the_front() -> None:
    assert non_dominated(EXAMPLE).tolist() == [True, True, False]


def test_weak_dominance_counts() -> None:
    # Equal in one coordinate, worse in the other: dominated.
    pts = [(0.8, 0.3), (0.8, 0.4), (0.7, 0.3)]
    assert non_dominated(pts).tolist() == [True, False, False]


def test_duplicates_both_stay_on_the_front() -> None:
    pts = [(0.8, 0.3), (0.6, 0.5), (0.8, 0.3)]
    assert non_dominated(pts).tolist() == [True, False, True]


def test_nan_rows_are_never_on_the_front_and_dominate_nothing() -> None:
    # (0.9, nan) would dominate (0.6, 0.5) on action if NaN compared as "good".
    pts = [(NAN, 0.1), (0.9, NAN), (0.6, 0.5), (NAN, NAN)]
    assert non_dominated(pts).tolist() == [False, False, True, False]


def test_empty_and_bad_shapes() -> None:
    assert non_dominated(np.empty((0, 2))).shape == (0,)
    assert non_dominated([]).shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        non_dominated([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        non_dominated(np.zeros((4, 3)))


def _dominated_by_loop(pts: np.ndarray) -> list[bool]:
    """The definition, one pair at a time."""
    out = []
    for i, (ai, pi) in enumerate(pts):
        on = bool(np.isfinite([ai, pi]).all())
        for j, (aj, pj) in enumerate(pts):
            if i != j and aj >= ai and pj <= pi and (aj > ai or pj < pi):
                on = False
        out.append(on)
    return out


def test_matches_an_explicit_loop_on_random_points_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        # A coarse grid, so ties in one or both coordinates are common.
        pts = rng.integers(0, 6, size=(15, 2)) / 5.0
        pts[rng.random(15) < 0.1, 0] = NAN
        assert non_dominated(pts).tolist() == _dominated_by_loop(pts)


# --- ranks (non-dominated sorting) ------------------------------------------------------------


def test_ranks_peel_the_fronts_by_hand() -> None:
    # Layer 1: (0.8, 0.3), (0.6, 0.1). Layer 2: (0.7, 0.4) (dominated by the first only),
    # (0.5, 0.2) (by the second only). Layer 3: (0.5, 0.5), dominated by (0.7, 0.4). NaN: 0.
    pts = [(0.8, 0.3), (0.6, 0.1), (0.7, 0.4), (0.5, 0.2), (0.5, 0.5), (NAN, 0.0)]
    assert ranks(pts).tolist() == [1, 1, 2, 2, 3, 0]
    assert ranks([]).tolist() == []
    assert ranks([(0.5, 0.5), (0.5, 0.5)]).tolist() == [1, 1]  # duplicates share a layer


def _ranks_by_definition(pts: np.ndarray) -> list[int]:
    """1 + the longest chain of points dominating each point (0 for a NaN row)."""
    finite = np.isfinite(pts).all(axis=1)

    def dominates(j: int, i: int) -> bool:
        (ai, pi), (aj, pj) = pts[i], pts[j]
        return aj >= ai and pj <= pi and (aj > ai or pj < pi)

    memo: dict[int, int] = {}

    def rank(i: int) -> int:
        if i not in memo:
            memo[i] = 1 + max((rank(j) for j in range(len(pts)) if finite[j] and
                               dominates(j, i)), default=0)  # fmt: skip
        return memo[i]

    return [rank(i) if finite[i] else 0 for i in range(len(pts))]


def test_ranks_match_the_definition_on_random_points_with_ties() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        pts = rng.integers(0, 6, size=(15, 2)) / 5.0
        pts[rng.random(15) < 0.1, 1] = NAN
        got = ranks(pts)
        assert got.tolist() == _ranks_by_definition(pts)
        assert (got == 1).tolist() == non_dominated(pts).tolist()  # layer 1 is the front


def test_rank_among_places_points_without_moving_the_ranked_ones() -> None:
    trials = [(0.8, 0.3), (0.6, 0.1), (0.7, 0.4)]
    layers = ranks(trials)  # 1, 1, 2
    baselines = [(0.9, 0.05), (0.75, 0.35), (0.5, 0.5), (0.8, 0.3), (NAN, 0.1)]
    # Dominating everything: 1. Dominated by layer 1 only: 2. Dominated by (0.7, 0.4) of
    # layer 2: 3. Equal to a front point: not dominated, 1. NaN: 0.
    assert rank_among(baselines, trials, layers).tolist() == [1, 2, 3, 1, 0]
    assert rank_among([(0.5, 0.5)], [], []).tolist() == [1]
    assert rank_among([], trials, layers).tolist() == []
    with pytest.raises(ValueError, match="layers"):
        rank_among([(0.5, 0.5)], trials, [1, 1])


# --- front_order -----------------------------------------------------------------------------


def test_front_order_is_by_action_descending() -> None:
    pts = [(0.6, 0.1), (0.8, 0.3), (0.5, 0.5), (0.7, 0.2), (NAN, 0.0)]
    assert front_order(pts) == [1, 3, 0]


def test_front_order_keeps_duplicates_in_input_order() -> None:
    pts = [(0.5, 0.1), (0.8, 0.3), (0.4, 0.6), (0.8, 0.3)]
    assert front_order(pts) == [1, 3, 0]
    assert front_order([(NAN, NAN)]) == []


# --- hypervolume ---------------------------------------------------------------------------------


def test_hypervolume_of_the_running_example_by_hand() -> None:
    # ref (0.2, 1.0). Boxes [ref_a, a] x [p, ref_p]:
    #   (0.8, 0.3): 0.6 x 0.7 = 0.42;   (0.6, 0.1): 0.4 x 0.9 = 0.36;
    #   their overlap [0.2, 0.6] x [0.3, 1.0] = 0.4 x 0.7 = 0.28;
    #   (0.5, 0.5) lies inside the first box.   Union: 0.42 + 0.36 - 0.28 = 0.50.
    assert hypervolume(EXAMPLE, ref=(0.2, 1.0)) == pytest.approx(0.50, abs=1e-12)


def test_hypervolume_three_steps_by_hand() -> None:
    # ref (0.1, 1.0). Sweeping privacy upwards, the best action so far times the strip width:
    #   [0.1, 0.3): 0.4 - 0.1 = 0.3, x 0.2 = 0.06
    #   [0.3, 0.6): 0.7 - 0.1 = 0.6, x 0.3 = 0.18
    #   [0.6, 1.0): 0.9 - 0.1 = 0.8, x 0.4 = 0.32          total 0.56
    pts = [(0.9, 0.6), (0.7, 0.3), (0.4, 0.1)]
    assert hypervolume(pts, ref=(0.1, 1.0)) == pytest.approx(0.56, abs=1e-12)


def test_hypervolume_depends_on_the_reference() -> None:
    # The running example with ref (0.0, 1.0): 0.8 x 0.7 + 0.6 x 0.9 - 0.6 x 0.7 = 0.68.
    assert hypervolume(EXAMPLE, ref=(0.0, 1.0)) == pytest.approx(0.68, abs=1e-12)
    # A tighter privacy reference (0.5) cuts (0.5, 0.5) and clips the others:
    # (0.8, 0.3): 0.6 x 0.2 = 0.12; (0.6, 0.1): 0.4 x 0.4 = 0.16; overlap 0.4 x 0.2 = 0.08.
    assert hypervolume(EXAMPLE, ref=(0.2, 0.5)) == pytest.approx(0.20, abs=1e-12)


def test_points_worse_than_the_reference_add_nothing() -> None:
    ref = (0.25, 1.0)
    single = [(0.7, 0.4)]  # 0.45 x 0.6 = 0.27
    assert hypervolume(single, ref) == pytest.approx(0.27, abs=1e-12)
    worse = [
        (0.25, 0.0),  # at action chance: no width
        (0.1, 0.0),  # below action chance
        (0.99, 1.0),  # leaks completely: no height
        (0.99, 1.2),  # beyond the reference
    ]
    assert hypervolume(worse, ref) == 0.0
    for point in worse:  # one at a time, so that no better point can mask a negative area
        assert hypervolume([point], ref) == 0.0, point
    assert hypervolume(single + worse, ref) == pytest.approx(0.27, abs=1e-12)


def test_dominated_duplicate_and_nan_rows_add_nothing() -> None:
    ref = (0.2, 1.0)
    extra = [(0.5, 0.5), (0.8, 0.3), (NAN, 0.0), (0.99, NAN), (0.3, 0.9)]
    assert hypervolume(EXAMPLE + extra, ref) == pytest.approx(0.50, abs=1e-12)
    assert hypervolume(np.empty((0, 2)), ref) == 0.0


def test_hypervolume_rejects_a_non_finite_reference() -> None:
    with pytest.raises(ValueError, match="ref"):
        hypervolume(EXAMPLE, ref=(NAN, 1.0))


def test_hypervolume_matches_a_grid_count() -> None:
    # Independent check: the fraction of a fine grid of cell centres inside some box.
    rng = np.random.default_rng(1)
    ref = (0.2, 0.9)
    n = 1000
    a = ref[0] + (np.arange(n) + 0.5) * (1.0 - ref[0]) / n
    p = (np.arange(n) + 0.5) * ref[1] / n
    aa, pp = np.meshgrid(a, p, indexing="ij")
    cell = (1.0 - ref[0]) * ref[1] / n**2
    for _ in range(5):
        pts = rng.random((12, 2))
        covered = np.zeros_like(aa, dtype=bool)
        for pa, pp_ in pts:
            covered |= (aa <= pa) & (pp >= pp_) & (aa > ref[0]) & (pp < ref[1])
        # The grid is off by at most one cell row/column along each box edge.
        assert hypervolume(pts, ref) == pytest.approx(covered.sum() * cell, abs=5e-3)


# --- knee ------------------------------------------------------------------------------------


def test_knee_of_an_l_shaped_front() -> None:
    # Normalised over the front (action 0.3..0.9, privacy 0.1..0.9), u + v is
    #   (0.9, 0.9): 1 + 0 = 1;   (0.85, 0.15): 0.917 + 0.938 = 1.85;   (0.3, 0.1): 0 + 1 = 1.
    pts = [(0.9, 0.9), (0.5, 0.5), (0.3, 0.1), (0.85, 0.15), (NAN, 0.0)]
    assert knee(pts) == 3


def test_knee_is_invariant_to_rescaling_an_axis() -> None:
    pts = np.array([(0.9, 0.5), (0.8, 0.2), (0.6, 0.15), (0.3, 0.1)])
    # u + v: 1 + 0, 0.833 + 0.75, 0.5 + 0.875, 0 + 1: the second point.
    assert knee(pts) == 1
    assert knee(pts * [100.0, 1.0]) == 1
    assert knee(pts * [1.0, 0.01]) == 1


def test_knee_of_one_and_two_point_fronts() -> None:
    # One point on the front (the others are dominated by it): it is the knee.
    assert knee([(0.5, 0.5), (0.9, 0.1), (0.6, 0.2)]) == 1
    # Two points: both on the extremes' line, so the lower privacy leak wins.
    assert knee([(0.9, 0.8), (0.5, 0.2)]) == 1
    assert knee([(0.5, 0.2), (0.9, 0.8)]) == 0
    # Duplicates: the first one.
    assert knee([(0.7, 0.3), (0.7, 0.3)]) == 0


def test_knee_of_a_front_bulging_the_wrong_way_is_an_extreme() -> None:
    # The middle point lies below the extremes' line (u + v = 0.5 + 0.25 < 1): no knee inside,
    # the extremes tie, and the lower privacy leak wins.
    assert knee([(0.9, 0.5), (0.6, 0.4), (0.3, 0.1)]) == 2


def test_knee_of_a_straight_front_is_a_tie_despite_rounding() -> None:
    # Three points on one line: u + v = 1 for each, but the middle one computes to
    # 1.0000000000000002 in floats. A tie all the same, so the lowest leak wins.
    assert knee([(0.35, 0.4), (0.2, 0.3), (0.05, 0.2)]) == 2


def test_knee_without_a_front_is_an_error() -> None:
    with pytest.raises(ValueError, match="no finite point"):
        knee([(NAN, 0.1), (0.2, NAN)])
    with pytest.raises(ValueError, match="no finite point"):
        knee(np.empty((0, 2)))
