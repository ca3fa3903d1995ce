"""The farm on a real local Ray with a real MLflow store: a candidate whose jobs crash is
logged as FAILED without losing the others, results aggregate onto the candidate's run, and a
second pass skips every job that already finished. Trained encoders reach the jobs as MLflow
artifacts, downloaded inside the Ray task, as on a cluster."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from privar.data.dataset import StudyData
from privar.encoders.artifact import ENCODER_FOLDER
from privar.farm.run import Candidate, Farm, aggregate
from privar.recipes.common import farm_spec
from privar.resources import concurrency
from privar.study import EncoderConfig, FarmConfig, Study, TrainConfig
from privar.tracking import Tracker


def test_aggregate_takes_the_worst_of_both_figures() -> None:
    results = {
        ("adversary", "a"): {"privacy_acc": 0.4, "privacy_acc_clip": 0.65},
        ("adversary", "b"): {"privacy_acc": 0.5, "privacy_acc_clip": 0.45},
        ("action", "m"): {"action_acc_fresh": 0.8},
        ("reconstruction", "u"): {"recon_psnr": 18.0, "recon_ssim": 0.5, "epochs": 1},
    }
    out = aggregate(results)
    assert out["privacy_acc_worst"] == 0.65  # the clip vote of a, not a per-frame figure
    assert out["privacy_acc_mean"] == pytest.approx(0.45)
    assert out["action_acc_fresh"] == 0.8
    assert out["recon_psnr"] == 18.0 and out["recon_ssim"] == 0.5 and "epochs" not in out


def test_a_crashing_candidate_fails_alone_and_finished_jobs_are_not_redone(
    colour_motion_data: StudyData, tmp_path: Path
) -> None:
    study = Study(
        name="farmtest",
        train=TrainConfig(epochs=1, batch_size=4, optimizer="adam", lr=3e-3),
        farm=FarmConfig(adversaries=("baby2d",), epochs=2, reconstruction=None, retries=1),
    )
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = tracker.experiment(study.name)
    parent = tracker.create_run(exp, "study", "farmtest")
    good = Candidate("identity", tracker.create_run(exp, "baseline", "identity", parent),
                     encoder=EncoderConfig("identity"))  # fmt: skip
    # A trial whose encoder artifact is junk: each job downloads it from MLflow, fails to load.
    corrupt = tmp_path / "encoder.pt"
    corrupt.write_bytes(b"not a checkpoint")
    bad_run = tracker.create_run(exp, "trial", "corrupt", parent)
    tracker.log_artifact(bad_run, corrupt, ENCODER_FOLDER)
    corrupt.unlink()  # the jobs get it from MLflow alone
    bad = Candidate("corrupt", bad_run, encoder_run=bad_run)

    said: list[str] = []
    farm = Farm(farm_spec(study), colour_motion_data, tracker, exp, say=said.append)
    results = {r.candidate.label: r.metrics for r in farm.attack([good, bad])}
    assert results["corrupt"] == {}
    # Each finished job says how far the farm got, failed ones too.
    ticks = [line.rsplit("  [", 1)[1] for line in said if " done, " in line]
    assert [t.split()[0] for t in ticks] == ["1/4", "2/4", "3/4", "4/4"], said
    assert " left]" in ticks[0] and ticks[-1].endswith(" elapsed]")
    assert sum("FAILED: " in line and " done, " in line for line in said) == 2
    assert results["identity"]["privacy_acc_worst"] >= 0.75  # the colour cue leaks
    assert 0 <= results["identity"]["action_acc_fresh"] <= 1

    def children(run_id: str) -> dict[str, str]:
        runs = tracker.client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run_id}'")
        return {r.data.tags["privar.kind"]: r.info.status for r in runs}

    assert children(good.run_id) == {"adversary": "FINISHED", "action": "FINISHED"}
    assert children(bad.run_id) == {"adversary": "FAILED", "action": "FAILED"}
    # A job's run is logged after the job, yet the UI shows how long the job took.
    for r in tracker.client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{good.run_id}'"):
        took_ms, job_ms = r.info.end_time - r.info.start_time, 1000 * r.data.metrics["job_s"]
        assert job_ms - 2 <= took_ms <= job_ms + 5000
    failed = tracker.client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{bad.run_id}'")
    assert all(r.data.tags["privar.error"] for r in failed)
    # The download worked; the junk file itself is what failed, named by run and artifact.
    assert all("not a readable encoder file" in r.data.tags["privar.error"] for r in failed), [
        r.data.tags["privar.error"] for r in failed]  # fmt: skip
    logged = tracker.client.get_run(good.run_id).data.metrics
    assert logged["privacy_acc_worst"] == pytest.approx(results["identity"]["privacy_acc_worst"])

    # A resumed farm: the good candidate's jobs are found FINISHED and not run again.
    again = {r.candidate.label: r.metrics for r in farm.attack([good])}
    assert again["identity"] == results["identity"]
    runs = tracker.client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{good.run_id}'")
    assert len(runs) == 2


def test_without_a_clip_cache_jobs_decode_in_their_own_bundle(
    colour_motion_data: StudyData, tmp_path: Path
) -> None:
    """Each job's Ray Data tasks run on the CPU its bundle holds for them: on 2 CPUs one job at
    a time, and no job waits for a CPU that another job holds."""
    uncached = dataclasses.replace(colour_motion_data, cache=None)
    study = Study(
        name="nocache",
        train=TrainConfig(epochs=1, batch_size=4, optimizer="adam", lr=3e-3),
        farm=FarmConfig(adversaries=("baby2d",), epochs=1, reconstruction=None),
    )
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = tracker.experiment(study.name)
    run = tracker.create_run(exp, "baseline", "identity")
    farm = Farm(farm_spec(study), uncached, tracker, exp, say=lambda _: None)
    assert farm.bundle == {"CPU": 2.0}  # the job's CPU and one for its Ray Data tasks
    assert concurrency([farm.bundle], farm.capacity, 4) == 1
    (result,) = farm.attack([Candidate("identity", run, encoder=EncoderConfig("identity"))])
    assert set(result.metrics) == {"privacy_acc_worst", "privacy_acc_mean", "action_acc_fresh"}
