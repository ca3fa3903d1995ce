"""Looking for credentials where a study writes them: the tests plant credential-like environment
variables with fresh random values, run privar, and look for the values in its console output,
its output folder and everything MLflow holds about the study (params, tags, metric names,
descriptions, and every artifact, downloaded)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

import mlflow.artifacts
from mlflow.tracking import MlflowClient

#: Credentials privar's users keep in their environment: cloud storage, an MLflow server with
#: basic auth, a model hub, the Ray cluster's token, and one of privar's own making.
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD",
               "HF_TOKEN", "RAY_AUTH_TOKEN", "PRIVAR_TEST_SECRET")  # fmt: skip


def planted_credentials() -> dict[str, str]:
    """Each of :data:`CREDENTIALS` with a fresh random value (64 hex digits: the shape of a Ray
    token, so a local Ray takes RAY_AUTH_TOKEN as its own), and the MLflow user that goes with
    the password (not a secret itself)."""
    return {**{name: secrets.token_hex(32) for name in CREDENTIALS},
            "MLFLOW_TRACKING_USERNAME": "privar-test"}  # fmt: skip


def find_leaks(values: Mapping[str, str], texts: Mapping[str, str],
               roots: Iterable[Path]) -> list[str]:  # fmt: skip
    """Where any of ``values`` (name -> secret) shows: ``"NAME in LABEL"`` for each of ``texts``
    (label -> text) that holds it, ``"NAME in PATH"`` for each file under ``roots`` whose bytes or
    path hold it."""
    found = [f"{name} in {label}" for label, text in texts.items() for name, secret in
             values.items() if secret in text]  # fmt: skip
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, secret in values.items()
                      if secret.encode() in data or secret in str(path)]  # fmt: skip
    return found


def mlflow_record(uri: str, experiment: str, into: Path) -> dict[str, str]:
    """What the MLflow at ``uri`` holds about ``experiment`` (a name), as label -> text: the
    experiment's tags, every run's params, tags and metric names, the registered model versions
    of its runs (tags and descriptions); every run's and logged model's artifacts are downloaded
    under ``into`` (for :func:`find_leaks`' ``roots``)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    texts = {f"experiment {experiment} tags": repr(exp.tags)}
    runs = client.search_runs([exp.experiment_id], max_results=10_000)
    for r in runs:
        label, rid = f"run {r.info.run_name} ({r.info.run_id})", r.info.run_id
        texts[f"{label} params"] = repr(r.data.params)
        texts[f"{label} tags"] = repr(r.data.tags)
        texts[f"{label} metric names"] = repr(sorted(r.data.metrics))
        mlflow.artifacts.download_artifacts(run_id=rid, dst_path=str(into / "runs" / rid),
                                            tracking_uri=uri)  # fmt: skip
    for m in client.search_logged_models([exp.experiment_id]):
        texts[f"logged model {m.model_id}"] = repr((m.name, m.tags, m.params))
        mlflow.artifacts.download_artifacts(artifact_uri=m.artifact_location,
                                            dst_path=str(into / "models" / m.model_id),
                                            tracking_uri=uri)  # fmt: skip
    ids = {r.info.run_id for r in runs}
    for v in client.search_model_versions(max_results=10_000):
        if v.run_id in ids:
            texts[f"model version {v.name}/{v.version}"] = repr((v.description, v.tags, v.source))
    return texts
