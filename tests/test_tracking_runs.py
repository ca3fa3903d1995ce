"""The run tree's helpers on a local sqlite MLflow store: runs end only as FINISHED, FAILED or
KILLED; a baseline run is created once and found again; study runs are found by study name;
a pruned trial is tagged and KILLED; a reopened run is RUNNING again; experiments open in the
model-training view with a description; trials log every setting, and a resumed one logs them
again without failing; nothing under a study stays RUNNING. And the pure naming helpers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from privar.tracking import Tracker, runs
from privar.tracking.names import (
    MAX_PARAM_LENGTH,
    baseline_run_name,
    distinct,
    flatten,
    param_text,
    short_params,
    trial_run_name,
)
from privar.tracking.runs import (
    ADVERSARY,
    BASELINE,
    ENCODER,
    EXPERIMENT_KIND,
    FOLDER,
    NOTE,
    PRUNED,
    SEARCHED,
    TRIAL,
)


@pytest.fixture
def tracker(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_runs_end_finished_failed_or_killed(tracker: Tracker) -> None:
    exp = tracker.experiment("ends")
    run = tracker.create_run(exp, "trial", "t0")
    with pytest.raises(ValueError, match="RUNNING"):
        tracker.finish(run, "RUNNING")
    tracker.finish(run, "FAILED")
    assert tracker.client.get_run(run).info.status == "FAILED"
    tracker.reopen(run)
    assert tracker.client.get_run(run).info.status == "RUNNING"
    tracker.prune(run)
    pruned = tracker.client.get_run(run)
    assert pruned.info.status == "KILLED" and pruned.data.tags[PRUNED] == "true"


def test_a_baseline_run_is_created_once(tracker: Tracker) -> None:
    exp = tracker.experiment("baselines")
    study = tracker.create_run(exp, "study", "s")
    first = tracker.baseline_run(exp, study, "downsample size=8", "downsample", {"size": 8})
    again = tracker.baseline_run(exp, study, "downsample size=8", "downsample", {"size": 8})
    assert first == again
    run = tracker.client.get_run(first)
    assert run.data.tags[ENCODER] == "downsample"
    assert run.data.tags[BASELINE] == "downsample size=8"
    assert run.data.params == {"encoder.params.size": "8"}


def test_study_runs_newest_first_with_a_folder(tracker: Tracker) -> None:
    assert tracker.study_runs("nothing yet") == []
    exp = tracker.experiment("studies")
    old = tracker.create_run(exp, "study", "s", tags={FOLDER: "/a"})
    time.sleep(0.01)  # start times in ms: keep them apart
    tracker.create_run(exp, "study", "s")  # no folder: not a study run privar can resume
    time.sleep(0.01)
    new = tracker.create_run(exp, "study", "s", tags={FOLDER: "/b"})
    assert [r.info.run_id for r in tracker.study_runs("studies")] == [new, old]


def test_find_runs_follows_every_page_and_quotes_values(
    tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "SEARCH_PAGE", 2)  # 5 runs: three pages
    exp = tracker.experiment("pages")
    made = [tracker.create_run(exp, "adversary", f"a{i}", tags={ADVERSARY: f"m{i}"})
            for i in range(5)]  # fmt: skip
    assert {r.info.run_id for r in tracker.find_runs(exp, "adversary")} == set(made)
    quoted = tracker.create_run(exp, "baseline", "q", tags={BASELINE: "it's"})
    (found,) = tracker.find_runs(exp, "baseline", tags={BASELINE: "it's"})
    assert found.info.run_id == quoted
    with pytest.raises(ValueError, match="both quotes"):
        tracker.find_runs(exp, "baseline", tags={BASELINE: 'it\'s "odd"'})


# -- names ---------------------------------------------------------------------------------------


def test_trial_and_baseline_names() -> None:
    sampled = {"encoder.params.levels": 4, "adversarial.alpha": 1.109375}
    assert trial_run_name(3, sampled) == "t3 alpha=1.11 levels=4"
    assert trial_run_name(12, {}) == "t12"
    assert trial_run_name(1, {"encoder.params.size": (12, 16)}) == "t1 size=12x16"
    # Two keys ending alike are written in full.
    assert trial_run_name(2, {"a.sigma": 0.123456, "b.sigma": 2.0}) == "t2 a.sigma=0.123 b.sigma=2"
    assert baseline_run_name("identity", {}) == "identity"
    assert baseline_run_name("downsample", {"size": 8}) == "downsample size=8"
    assert baseline_run_name("blur", {"sigma": 1.23456}) == "blur sigma=1.23"
    assert short_params({"x.alpha": 1234.5678}, digits=4) == "alpha=1235"


def test_distinct_names() -> None:
    assert distinct(["a", "a", "b", "a"]) == ["a", "a (2)", "b", "a (3)"]
    assert distinct(["a", "a (2)", "a"]) == ["a", "a (2)", "a (3)"]
    names = [baseline_run_name("blur", {"sigma": s}) for s in (1.0001, 1.0002)]
    assert distinct(names) == ["blur sigma=1", "blur sigma=1 (2)"]


def test_flatten_and_param_text() -> None:
    from privar.study import EncoderConfig, TrainConfig

    flat = flatten({"train": TrainConfig(lr=0.003), "encoder": EncoderConfig("bdq", {"levels": 4}),
                    "data": {"size": (32, 32)}, "empty": {}})  # fmt: skip
    assert flat["train.lr"] == 0.003 and flat["train.epochs"] == TrainConfig().epochs
    assert flat["encoder.name"] == "bdq" and flat["encoder.params.levels"] == 4
    assert flat["data.size"] == (32, 32) and not any(k.startswith("empty") for k in flat)
    assert param_text((32, 32)) == "[32, 32]" and param_text(None) == "None"
    long = param_text("x" * 10_000)
    assert len(long) == MAX_PARAM_LENGTH and long.endswith("...")


# -- experiments, trials and the end of a study -------------------------------------------------


def test_experiment_opens_in_the_model_training_view_with_a_description(
    tracker: Tracker,
) -> None:
    exp = tracker.experiment("described", "**described**: scheme adversarial")
    tags = tracker.client.get_experiment(exp).tags
    assert tags[EXPERIMENT_KIND] == "custom_model_development"
    assert tags[NOTE] == "**described**: scheme adversarial"
    # Reused: the same id, tagged again; a call without a description keeps the old one.
    tracker.client.delete_experiment_tag(exp, EXPERIMENT_KIND)
    assert tracker.experiment("described") == exp
    tags = tracker.client.get_experiment(exp).tags
    assert tags[EXPERIMENT_KIND] == "custom_model_development"
    assert tags[NOTE] == "**described**: scheme adversarial"


def test_a_trial_logs_every_setting_and_a_resumed_one_logs_them_again(tracker: Tracker) -> None:
    exp = tracker.experiment("settings")
    study = tracker.create_run(exp, "study", "s")
    settings = {f"train.k{i:03d}": i for i in range(150)}  # more than one MLflow batch holds
    settings |= {"adversarial.alpha": 1.109375, "encoder.params.levels": 4,
                 "data.size": (32, 32), "note": "y" * 7000}  # fmt: skip
    searched = ("adversarial.alpha", "encoder.params.levels")
    run = tracker.trial_run(exp, study, "abc_00001", "t1 alpha=1.11 levels=4", settings, "bdq",
                            searched)  # fmt: skip
    got = tracker.client.get_run(run)
    assert got.info.run_name == "t1 alpha=1.11 levels=4"
    assert got.data.tags[TRIAL] == "abc_00001" and got.data.tags[ENCODER] == "bdq"
    assert got.data.tags[SEARCHED] == "adversarial.alpha,encoder.params.levels"
    assert len(got.data.params) == len(settings)
    assert got.data.params["adversarial.alpha"] == "1.109375"
    assert got.data.params["data.size"] == "[32, 32]"
    assert len(got.data.params["note"]) == MAX_PARAM_LENGTH
    tracker.finish(run, "FAILED")
    # Resumed: found by its tag, RUNNING again; the same values again (and a new one) are fine.
    again = tracker.trial_run(exp, study, "abc_00001", "ignored", {**settings, "seed": 0}, "bdq",
                              searched)  # fmt: skip
    assert again == run
    got = tracker.client.get_run(run)
    assert got.info.status == "RUNNING" and got.info.run_name == "t1 alpha=1.11 levels=4"
    assert got.data.params["seed"] == "0" and len(got.data.params) == len(settings) + 1


def test_close_running_ends_every_run_under_the_study_only(tracker: Tracker) -> None:
    exp = tracker.experiment("closing")
    study = tracker.create_run(exp, "study", "s")
    trial = tracker.create_run(exp, "trial", "t1", study)
    tracker.finish(trial)
    farm_job = tracker.create_run(exp, "adversary", "adversary-baby2d", trial)  # under a trial
    running_trial = tracker.create_run(exp, "trial", "t2", study)
    baseline = tracker.create_run(exp, "baseline", "identity", study)
    other_study = tracker.create_run(exp, "study", "s")
    elsewhere = tracker.create_run(exp, "trial", "t1", other_study)
    assert tracker.close_running(exp, study, "KILLED") == 3
    status = {r: tracker.client.get_run(r).info.status
              for r in (study, trial, farm_job, running_trial, baseline, elsewhere)}  # fmt: skip
    assert status == {study: "RUNNING", trial: "FINISHED", farm_job: "KILLED",
                      running_trial: "KILLED", baseline: "KILLED",
                      elsewhere: "RUNNING"}  # fmt: skip
    assert tracker.close_running(exp, study) == 0


def test_the_experiment_url_opens_the_model_training_view() -> None:
    served = Tracker("http://127.0.0.1:5000/")
    assert served.experiment_url("7") == (
        "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert Tracker("sqlite:///mlflow.db").experiment_url("7") == "sqlite:///mlflow.db"
