"""Successive halving's arithmetic (privar.farm.racing): rungs, survivors, adversary-epochs;
and a racing farm on a real local Ray and a real MLflow store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from privar.data.dataset import StudyData
from privar.errors import UserError
from privar.farm.racing import (
    Rung,
    adversary_epochs,
    compute_fraction,
    keep,
    schedule,
    score,
    survivors,
)
from privar.farm.run import Candidate, Farm
from privar.recipes.common import farm_spec
from privar.study import EncoderConfig, FarmConfig, Study, TrainConfig, with_overrides
from privar.tracking import Tracker


def test_rungs_grow_by_eta_while_more_than_one_adversary_is_left() -> None:
    assert schedule(4, 10, 2, 1) == (Rung(1, 4), Rung(2, 2), Rung(10, 1))
    # Ten paper adversaries at 50 epochs: 10 -> 5 -> 3 -> 2 -> 1.
    assert schedule(10, 50, 2, 5) == (Rung(5, 10), Rung(10, 5), Rung(20, 3), Rung(40, 2),
                                      Rung(50, 1))  # fmt: skip
    assert schedule(9, 27, 3, 1) == (Rung(1, 9), Rung(3, 3), Rung(27, 1))


def test_a_race_that_cannot_halve_is_the_full_farm() -> None:
    assert schedule(1, 10, 2, 1) == (Rung(10, 1),)  # one adversary
    assert schedule(4, 3, 2, 3) == (Rung(3, 4),)  # the first rung is the whole farm
    # A rung that would reach past the farm's epochs ends at them.
    assert schedule(8, 6, 2, 4) == (Rung(4, 8), Rung(6, 4))


def test_keep_rounds_up_and_keeps_one() -> None:
    assert [keep(n, 2) for n in (1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3]
    assert [keep(n, 3) for n in (1, 3, 4, 9, 10)] == [1, 1, 2, 3, 4]


def test_adversary_epochs_and_the_compute_fraction() -> None:
    rungs = schedule(4, 10, 2, 1)
    assert adversary_epochs(rungs) == 4 * 1 + 2 * 1 + 1 * 8
    assert compute_fraction(rungs) == pytest.approx(14 / 40)
    paper = schedule(10, 50, 2, 5)
    assert adversary_epochs(paper) == 10 * 5 + 5 * 5 + 3 * 10 + 2 * 20 + 1 * 10
    assert compute_fraction(paper) == pytest.approx(155 / 500)
    assert compute_fraction(schedule(3, 10, 2, 20)) == 1.0


def test_survivors_are_the_best_in_their_original_order() -> None:
    scores = [(0.5, 0.4), (0.9, 0.8), (0.7, 0.7), (0.95, 0.1)]
    assert survivors(scores, 2) == [1, 3]
    assert survivors(scores, 1) == [3]
    assert survivors(scores, 9) == [0, 1, 2, 3]


def test_ties_go_to_the_second_figure_then_the_earlier_adversary() -> None:
    assert survivors([(0.5, 0.2), (0.5, 0.4), (0.1, 0.0)], 1) == [1]
    assert survivors([(0.5, 0.4), (0.5, 0.4), (0.5, 0.4)], 2) == [0, 1]


def test_a_race_ranks_by_the_worst_case_then_accuracy_then_loss() -> None:
    clip_vote = {"privacy_acc": 0.5, "privacy_acc_clip": 0.7, "privacy_nll": 1.0}
    per_frame = {"privacy_acc": 0.6, "privacy_acc_clip": 0.6, "privacy_nll": 0.2}
    assert score(clip_vote) == (0.7, 0.5, -1.0)
    assert survivors([score(per_frame), score(clip_vote)], 1) == [1]  # 0.7 beats 0.6
    # Both at chance: the one that learnt more (lower cross-entropy) goes on.
    at_chance = [{"privacy_acc": 1 / 6, "privacy_acc_clip": 1 / 6, "privacy_nll": nll}
                 for nll in (1.79, 1.70, 1.75)]  # fmt: skip
    assert survivors([score(m) for m in at_chance], 1) == [1]


@pytest.mark.parametrize(("key", "value", "says"), [
    ("farm.racing_eta", 1, "farm.racing_eta: must be at least 2, got 1"),
    ("farm.racing_min_epochs", 0, "farm.racing_min_epochs: must be at least 1, got 0"),
    ("farm.racing", "sometimes", "farm.racing: expected bool"),
])  # fmt: skip
def test_a_bad_racing_setting_is_one_line_naming_its_key(key: str, value: Any,
                                                         says: str) -> None:  # fmt: skip
    with pytest.raises(UserError, match=says) as e:
        with_overrides(Study(name="bad"), {key: value})
    assert "\n" not in str(e.value)


def test_the_full_farm_is_the_default_and_one_rung() -> None:
    study = Study(name="races", farm=FarmConfig(adversaries=("baby2d", "baby_vit", "baby_mlp"),
                                               epochs=10))  # fmt: skip
    assert farm_spec(study).race(3) == (Rung(10, 3),)
    raced = farm_spec(with_overrides(study, {"farm.racing": True}))
    assert raced.race(3) == (Rung(1, 3), Rung(2, 2), Rung(10, 1))


@pytest.mark.parametrize("bad", [(0, 10, 2, 1), (3, 0, 2, 1), (3, 10, 1, 1), (3, 10, 2, 0)])
def test_a_bad_schedule_is_refused(bad: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="schedule"):
        schedule(*bad)


def test_a_racing_farm_stops_the_weaker_adversaries_and_logs_them(
    colour_motion_data: StudyData, tmp_path: Path
) -> None:
    """Four adversaries race on real videos through a real Ray and MLflow: rungs end at 1, 2
    and 4 epochs with 4, 2 and 1 of them, half the full farm's adversary-epochs. The one that
    ran every epoch led each rung, trained exactly as in the full farm (it went on from its
    state), and alone makes the worst case; the others are logged with the epochs they got."""
    names = ("baby2d", "baby2d_wide", "baby_mlp", "baby_vit")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = tracker.experiment("racing")

    def farm(racing: bool) -> tuple[dict[str, float], dict[str, Any]]:
        study = Study(
            name="racing",
            train=TrainConfig(epochs=1, batch_size=4, optimizer="adam", lr=3e-3),
            farm=FarmConfig(adversaries=names, epochs=4, reconstruction=None, racing=racing,
                            racing_eta=2, racing_min_epochs=1),
        )  # fmt: skip
        run = tracker.create_run(exp, "baseline", f"identity-{racing}")
        farm = Farm(farm_spec(study), colour_motion_data, tracker, exp, say=lambda _: None)
        (result,) = farm.attack([Candidate("identity", run, encoder=EncoderConfig("identity"))])
        mine = f"tags.`mlflow.parentRunId` = '{run}' and tags.`privar.kind` = 'adversary'"
        runs = tracker.client.search_runs([exp], mine)
        return result.metrics, {r.data.tags["privar.adversary"]: r for r in runs}

    full, full_runs = farm(racing=False)
    raced, runs = farm(racing=True)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs.values())
    assert sum(r.data.metrics["epochs"] for r in runs.values()) == 1 + 1 + 2 + 4
    assert sum(r.data.metrics["epochs"] for r in full_runs.values()) == 16
    assert not any("privar.racing" in r.data.tags for r in full_runs.values())
    (winner,) = [n for n, r in runs.items() if r.data.metrics["racing_stopped"] == 0]
    assert runs[winner].data.tags["privar.racing"] == "ran all 4 epochs"
    for n, r in runs.items():
        if n != winner:
            got = int(r.data.metrics["epochs"])
            assert r.data.tags["privar.racing"] == f"stopped at epoch {got} of 4"
            assert got in (1, 2) and r.data.metrics["racing_stopped"] == 1
    # Every rung kept its leader: the winner scored at least each adversary it outlasted.
    history = {n: {m.step: m.value for m in tracker.client.get_metric_history(
        r.info.run_id, "racing_score")} for n, r in runs.items()}  # fmt: skip
    assert set(history[winner]) == {1, 2, 4}
    for n in names:
        for epoch, value in history[n].items():
            assert history[winner][epoch] >= value
    # The winner went on from its state: its figures are the full farm's, bit for bit.
    for key in ("privacy_acc", "privacy_acc_clip"):
        assert runs[winner].data.metrics[key] == full_runs[winner].data.metrics[key]
    m = runs[winner].data.metrics
    assert raced["privacy_acc_worst"] == max(m["privacy_acc"], m["privacy_acc_clip"])
    assert raced["privacy_acc_worst"] <= full["privacy_acc_worst"]
    assert raced["action_acc_fresh"] == full["action_acc_fresh"]  # not raced
