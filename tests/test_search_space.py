"""The search's pure parts: space -> Optuna suggestions -> study overrides, samplers by name,
and the searcher telling Optuna that an early-stopped trial was pruned (no Ray cluster needed:
a Tune searcher is a plain object)."""

from __future__ import annotations

import functools

import optuna
import pytest

from privar.search.space import decode, make_sampler, suggest
from privar.search.tuner import PrunedAwareOptunaSearch
from privar.study import Param, load_study, with_overrides

SPACE = {
    "adversarial.alpha": Param("loguniform", 0.1, 8.0),
    "encoder.params.levels": Param("choice", values=[4, 8, 16]),
    "train.epochs": Param("int", 2, 4),
    "encoder.params.resolution": Param("choice", values=[[12, 16], [24, 32]]),
}


def test_suggestions_stay_in_the_space_and_decode_to_valid_overrides() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    seen_res = set()
    for _ in range(20):
        trial = study.ask()
        suggest(trial, SPACE)
        overrides = decode(trial.params, SPACE)
        assert 0.1 <= overrides["adversarial.alpha"] <= 8.0
        assert overrides["encoder.params.levels"] in (4, 8, 16)
        assert overrides["train.epochs"] in (2, 3, 4)
        assert overrides["encoder.params.resolution"] in ([12, 16], [24, 32])
        seen_res.add(tuple(overrides["encoder.params.resolution"]))
        study.tell(trial, [0.5, 0.5])
    assert seen_res == {(12, 16), (24, 32)}  # list-valued choices are offered and come back
    # The log scale: 20 log-uniform draws in 0.1..8 put some below 1 (a uniform draw rarely).
    alphas = [t.params["adversarial.alpha"] for t in study.trials]
    assert sum(a < 1 for a in alphas) >= 5


def test_decoded_overrides_apply_to_the_smoke_study() -> None:
    smoke = load_study("studies/smoke.yaml")
    variant = with_overrides(smoke, {"adversarial.alpha": 2.5, "encoder.params.levels": 4})
    assert variant.adversarial.alpha == 2.5 and variant.encoder.params["levels"] == 4


@pytest.mark.parametrize("name", ["tpe", "nsga2", "gp", "random"])
def test_samplers_by_name_run_a_two_objective_study(name: str) -> None:
    sampler = make_sampler(name, seed=0, num_trials=8)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    space = {"x": Param("uniform", 0.0, 1.0)}
    for _ in range(6):
        trial = study.ask()
        suggest(trial, space)
        x = trial.params["x"]
        study.tell(trial, [x, x * x])  # a real trade-off: more x, more "leak"
    assert len(study.best_trials) >= 1
    if name == "nsga2":
        assert sampler._population_size == 4  # sized to the budget, not Optuna's 50


def _searcher() -> PrunedAwareOptunaSearch:
    return PrunedAwareOptunaSearch(
        space=functools.partial(suggest, space={"a": Param("uniform", 0.0, 1.0)}),
        metric=["action_acc", "privacy_acc"], mode=["max", "min"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )  # fmt: skip


def test_an_early_stopped_trial_is_pruned_and_never_on_the_front() -> None:
    s = _searcher()
    s.suggest("full")
    s.suggest("stopped")
    s.on_trial_complete("full", {"action_acc": 0.6, "privacy_acc": 0.4, "epoch": 3, "epochs": 3})
    # Better on both objectives, but only because it was measured after 1 of 3 epochs.
    early = {"action_acc": 0.9, "privacy_acc": 0.1, "epoch": 1, "epochs": 3}
    s.on_trial_complete("stopped", early)
    states = [t.state for t in s._ot_study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert [t.values for t in s._ot_study.best_trials] == [[0.6, 0.4]]


def test_an_errored_trial_is_failed_not_pruned() -> None:
    s = _searcher()
    s.suggest("crashed")
    s.on_trial_complete("crashed", None, error=True)
    assert s._ot_study.trials[0].state == optuna.trial.TrialState.FAIL
