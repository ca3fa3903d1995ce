"""The run tree's helpers on a local sqlite MLflow store: runs end only as FINISHED, FAILED or
KILLED; a baseline run is created once and found again; study runs are found by study name;
a pruned trial is tagged and KILLED; a reopened run is RUNNING again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from privar.tracking import Tracker, runs
from privar.tracking.runs import ADVERSARY, BASELINE, ENCODER, FOLDER, PRUNED


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
        tracker.find_runs(exp, "baseline", tags={BASELINE: "it's \"odd\""})
