"""`privar run`, `pareto` and `farm` end to end: a real `mlflow server` on 127.0.0.1, a real
local Ray, real synthetic videos decoded by decord; the run tree is read back with
`MlflowClient`. Tiny: 2 trials of 1 epoch on 8-frame 32x32 clips. `privar resume` after a
killed driver, mid-search and mid-farm: test_faults.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
from mlflow.tracking import MlflowClient

from conftest import tiny_study
from leaks import find_leaks, mlflow_record, planted_credentials

pytestmark = pytest.mark.slow  # whole studies, minutes each

BIN = Path(sys.executable).parent
PRIVAR = str(BIN / "privar")
TRIAL_NAME = re.compile(r"t(\d+) alpha=\d[\d.e+-]* levels=(4|8)")


def _study(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(tiny_study(name, tmp_path / "synthetic", tmp_path / "out"))
    return path


def _privar(*args: str, cwd: Path, timeout: float = 400,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    return subprocess.run([PRIVAR, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, **(env or {})})  # fmt: skip


def test_run_logs_the_whole_tree_and_picks_a_front(mlflow_server: str, tmp_path: Path) -> None:
    """Every command here runs with credential-like environment variables set; none of their
    values may reach the console, the output folder or MLflow (checked at the end)."""
    study = _study(tmp_path, "tree")
    canary = "privar-canary-" + os.urandom(8).hex()  # in the study file: it must be found
    study.write_text(f"# {canary}\n" + study.read_text())
    credentials = planted_credentials()
    console = []

    def privar(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        done = _privar(*args, cwd=cwd, env=credentials)
        console.append(done.stdout + done.stderr)
        return done

    p = privar("run", str(study), "--tracking-uri", mlflow_server, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "Pareto front of tree (farm-checked" in p.stdout
    assert not (tmp_path / "mlflow.db").exists()  # everything went to the server
    assert "View run" not in p.stdout  # MLflow's link to each run it ends: 30 lines of noise

    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("tree")
    # The experiment opens in MLflow's model-training view, and says what the study is.
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "**tree**" in exp.tags["mlflow.note.content"]
    assert "`adversarial.alpha`" in exp.tags["mlflow.note.content"]
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    # No run is left RUNNING when the study ends: farm runs and baselines included.
    assert {r.info.status for r in runs} == {"FINISHED"}, [
        (r.info.run_name, r.info.status) for r in runs if r.info.status != "FINISHED"]  # fmt: skip
    by_kind: dict[str, list] = {}
    for r in runs:
        by_kind.setdefault(r.data.tags.get("privar.kind"), []).append(r)
    (study_run,) = by_kind["study"]
    sid = study_run.info.run_id
    trials = by_kind["trial"]
    assert len(trials) == 2
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {sid}
    assert len({t.data.tags["privar.trial"] for t in trials}) == 2
    # Named by number and sampled values: t1 and t2.
    numbers = sorted(int(TRIAL_NAME.fullmatch(t.info.run_name)[1]) for t in trials)
    assert numbers == [1, 2], [t.info.run_name for t in trials]
    for t in trials:
        assert t.info.status == "FINISHED"
        assert 0.1 <= float(t.data.params["adversarial.alpha"]) <= 8.0
        assert t.data.params["encoder.params.levels"] in ("4", "8")
        alpha = float(t.data.params["adversarial.alpha"])
        assert f"alpha={alpha:.3g} " in t.info.run_name
        # Every setting that shapes the trial, not only the sampled ones.
        settings = {"train.lr": "0.003", "train.epochs": "1", "train.batch_size": "8",
                    "action_model.name": "baby3d", "privacy_model.name": "baby2d",
                    "data.clip_len": "8", "data.size": "[32, 32]", "scheme": "adversarial",
                    "encoder.name": "bdq"}  # fmt: skip
        assert {k: t.data.params.get(k) for k in settings} == settings
        assert t.data.metrics["pareto_rank"] >= 1
        assert {"action_acc", "privacy_acc", "loss", "data_wait_frac"} <= set(t.data.metrics)
        assert len(client.get_metric_history(t.info.run_id, "action_acc")) == 1  # 1 epoch
        files = {a.path for a in client.list_artifacts(t.info.run_id, "encoder")}
        assert files == {"encoder/encoder.pt"}
        assert t.data.tags["privar.encoder_artifact"] == "encoder/encoder.pt"
        assert [a.path for a in client.list_artifacts(t.info.run_id, "samples")] == [
            "samples/encoded.png"]  # fmt: skip
        # The farm: both adversaries, the reconstruction and a fresh action model, as children.
        kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == t.info.run_id]
        advs = {k.data.tags["privar.adversary"]: k for k in kids
                if k.data.tags["privar.kind"] == "adversary"}  # fmt: skip
        assert set(advs) == {"baby2d", "baby2d_wide"}
        worst = max(max(a.data.metrics["privacy_acc"], a.data.metrics["privacy_acc_clip"])
                    for a in advs.values())  # fmt: skip
        assert t.data.metrics["privacy_acc_worst"] == pytest.approx(worst)
        assert {k.data.tags["privar.kind"] for k in kids} == {"adversary", "reconstruction",
                                                              "action"}  # fmt: skip
        assert t.data.metrics["recon_psnr"] > 0 and -1 <= t.data.metrics["recon_ssim"] <= 1
        assert 0 <= t.data.metrics["action_acc_fresh"] <= 1
    (baseline,) = by_kind["baseline"]
    assert baseline.data.tags["privar.encoder"] == "identity"
    assert baseline.info.run_name == "identity"
    assert "pareto_rank" in baseline.data.metrics
    # The same picture path for trials and baselines: MLflow's compare view shows them together.
    assert [a.path for a in client.list_artifacts(baseline.info.run_id, "samples")] == [
        "samples/encoded.png"]  # fmt: skip
    assert baseline.data.tags["mlflow.parentRunId"] == sid
    assert "privacy_acc_worst" in baseline.data.metrics

    assert "hypervolume" in study_run.data.metrics
    names = {a.path for a in client.list_artifacts(sid, "pareto")}
    assert names == {"pareto/pareto.csv", "pareto/pareto.png"}
    assert "report.html" in {a.path for a in client.list_artifacts(sid)}
    page = Path(client.download_artifacts(sid, "report.html", str(tmp_path))).read_text()
    assert "data:image/png;base64," in page and "identity" in page
    header = Path(client.download_artifacts(sid, "pareto/pareto.csv", str(tmp_path)))
    assert header.read_text().splitlines()[0].split(",")[:7] == [
        "rank", "trial", "run_id", "run_name", "encoder", "action_acc_fresh",
        "privacy_acc_worst"]  # fmt: skip
    assert {a.path for a in client.list_artifacts(sid, "study")} >= {"study/tree.yaml"}
    model = client.get_registered_model("tree-encoder")
    assert "pareto-1" in model.aliases and "knee" in model.aliases
    front_run = client.get_model_version_by_alias("tree-encoder", "pareto-1").run_id
    assert front_run in {t.info.run_id for t in trials}
    assert client.get_run(front_run).data.metrics["pareto_rank"] == 1
    assert "pareto-1" in client.get_run(front_run).data.tags["privar.alias"]
    knee = client.get_model_version_by_alias("tree-encoder", "knee")
    assert "knee" in client.get_run(knee.run_id).data.tags["privar.alias"]
    assert "privacy_acc_worst" in knee.description and "trial" in knee.description
    # The registered encoder is an MLflow PyTorch model that encodes a clip.
    mlflow.set_tracking_uri(mlflow_server)
    encoder = mlflow.pytorch.load_model("models:/tree-encoder@knee")
    encoded = encoder(torch.rand(1, 3, 8, 32, 32))
    assert encoded.shape == (1, 3, 7, 32, 32) and torch.isfinite(encoded).all()
    # Exported for the camera from the encoder downloaded from MLflow.
    assert "pareto-1" in p.stdout and "exported" in p.stdout
    assert [a.path for a in client.list_artifacts(front_run, "camera")] == ["camera/camera-1.ts"]

    # `privar pareto` reads the same front back from MLflow alone.
    out = tmp_path / "again"
    p = privar("pareto", str(study), "--tracking-uri", mlflow_server, "--out", str(out),
               cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "pareto.csv").read_text().count("\n") >= 2
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "Downloading artifacts" not in p.stdout + p.stderr  # MLflow's bars: noise here

    # `privar farm --run` attacks one trial again on demand, under that trial.
    one = trials[0].info.run_id
    p = privar("farm", "--run", one, "--tracking-uri", mlflow_server, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "privacy_acc_worst" in p.stdout

    # Nothing node-local crosses nodes: no tag or param of any run names a path under this
    # machine's tmp_path. The one exception is the study run's own search folder, which only
    # `privar resume` reads, on the driver that wrote it.
    local = str(tmp_path)
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        tags = dict(r.data.tags)
        if r.info.run_id == sid:
            assert tags.pop("privar.folder").startswith(local)
        leaks = {k: v for k, v in {**r.data.params, **tags}.items() if local in v}
        assert not leaks, (r.info.run_name, leaks)

    # No credential reaches the console, the output folder (and the working directory) or
    # MLflow: params, tags, metric names, model descriptions, every artifact. The canary in the
    # study file shows the artifacts were read.
    texts = mlflow_record(mlflow_server, "tree", tmp_path / "mlflow-record")
    texts |= {f"console of privar command {i}": c for i, c in enumerate(console)}
    assert find_leaks(credentials, texts, [tmp_path]) == []
    seen = find_leaks({"canary": canary}, texts, [tmp_path / "mlflow-record"])
    assert any("study/tree.yaml" in s for s in seen), seen
