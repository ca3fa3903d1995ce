"""A study on two Ray nodes that share no output, cache or MLflow folder: the second node runs in
its own mount namespace with a tmpfs over everything this test session writes, so a file only
the head wrote does not exist there. What must cross nodes (encoders, checkpoints, results) has
to travel through the MLflow server and the search's shared storage, as on a real cluster."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import tiny_study
from ray_nodes import BIN, head_and_private_worker, ray_env


@pytest.mark.slow
def test_a_study_on_two_nodes_with_separate_filesystems(
    mlflow_server: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The "network file system" both nodes see: the videos and Tune's storage. Everything under
    # pytest's temp folder (the study's output and clip cache, the MLflow server's files) is
    # the head's alone.
    shared = Path(tempfile.mkdtemp(prefix="privar-shared-", dir="/tmp"))
    private = tmp_path_factory.getbasetemp()
    try:
        # One CPU per node: the two trials run at once, so one of them runs on the worker.
        with head_and_private_worker(private) as address:
            study = tmp_path / "twonodes.yaml"
            study.write_text(tiny_study("twonodes", shared / "synthetic", changes={
                "data.cache_dir": str(tmp_path / "cache"), "train.epochs": 2,
                "search.space": {"adversarial.alpha": {"type": "loguniform", "low": 0.1,
                                                       "high": 8.0}},
                "farm.adversaries": ["baby2d"]}))  # fmt: skip
            p = subprocess.run(
                [str(BIN / "privar"), "run", str(study), "--address", address,
                 "--tracking-uri", mlflow_server, "--storage", str(shared / "tune")],
                capture_output=True, text=True, cwd=tmp_path, env=ray_env(), timeout=900,
            )  # fmt: skip
        assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
        assert "Ray 2 CPUs at 127.0.0.1" in p.stdout
        assert "Pareto front of twonodes (farm-checked" in p.stdout
    finally:
        shutil.rmtree(shared, ignore_errors=True)

    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("twonodes")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    kinds = [r.data.tags.get("privar.kind") for r in runs]
    assert kinds.count("study") == 1 and kinds.count("trial") == 2
    assert all(r.info.status == "FINISHED" for r in runs), [
        (r.info.run_name, r.info.status) for r in runs]  # fmt: skip
    trials = [r for r in runs if r.data.tags.get("privar.kind") == "trial"]
    # The farm's two one-CPU bundles took a node each: the worker attacked encoders it could
    # only have from MLflow, on clips it could only have decoded itself.
    jobs = [r for r in runs if r.data.tags.get("privar.kind") in ("adversary", "action",
                                                                 "reconstruction")]  # fmt: skip
    assert len({r.data.tags["privar.node"] for r in jobs}) == 2
    assert {t.data.tags["privar.node"] for t in trials} <= {r.data.tags["privar.node"]
                                                             for r in jobs}  # fmt: skip
    for t in trials:
        assert [m.step for m in client.get_metric_history(t.info.run_id, "action_acc")] == [0, 1]
        assert {"privacy_acc_worst", "action_acc_fresh", "recon_psnr"} <= set(t.data.metrics)
        assert {f.path for f in client.list_artifacts(t.info.run_id, "encoder")} == {
            "encoder/encoder.pt"}  # fmt: skip
        kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == t.info.run_id]
        assert sorted(k.data.tags["privar.kind"] for k in kids) == [
            "action", "adversary", "reconstruction"]  # fmt: skip
    (study_run,) = [r for r in runs if r.data.tags.get("privar.kind") == "study"]
    assert "hypervolume" in study_run.data.metrics
    assert client.get_model_version_by_alias("twonodes-encoder", "pareto-1").run_id in {
        t.info.run_id for t in trials}  # fmt: skip
