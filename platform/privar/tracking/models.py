"""Encoders as MLflow models: logged from a run, registered as versions with aliases.

A model is logged with :func:`log_torch_model` as an MLflow 3 *logged model* of the run (the
``pytorch`` flavour, MLflow's default ``pt2`` format outside Databricks: a ``torch.export``
program, which loads without privar and runs no pickled code) with an input example, so
``mlflow.pytorch.load_model("models:/<name>@<alias>")`` gives a module that takes a clip of the
example's shape. :func:`model_version` registers it once per run, and updates its description.

MLflow's ``log_model`` has no client form: it reads the process's tracking URI, which is set to
the tracker's for the call and put back afterwards (``run_id`` names the run, so no run is
started or ended).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from privar.tracking.runs import MODEL, quoted

if TYPE_CHECKING:
    import torch

    from privar.tracking.runs import Tracker

MODEL_NAME = "model"  # the logged model's name in its run


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    import mlflow

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def log_torch_model(tracker: Tracker, run_id: str, module: torch.nn.Module,
                    example: np.ndarray) -> str:  # fmt: skip
    """Log a frozen copy of ``module`` (eval mode, no parameter requiring grad: what is logged
    only runs inference) as the MLflow model of run ``run_id``, with ``example`` (float32) as
    its input example; tag the run :data:`~privar.tracking.runs.MODEL` with the model's URI
    (``models:/m-...``) and return it. A run that logged its model before keeps it: its URI is
    returned and nothing is logged again."""
    import mlflow.pytorch
    import torch

    logged = tracker.client.get_run(run_id).data.tags.get(MODEL)
    if logged:
        return logged
    frozen = copy.deepcopy(module).cpu().eval().requires_grad_(False)
    with _tracking_uri(tracker.uri):
        info = mlflow.pytorch.log_model(
            frozen, name=MODEL_NAME, input_example=np.asarray(example, dtype=np.float32),
            run_id=run_id, pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )  # fmt: skip
    tracker.set_tags(run_id, {MODEL: info.model_uri})
    return info.model_uri


def model_version(tracker: Tracker, name: str, model_uri: str, run_id: str,
                  description: str) -> str:  # fmt: skip
    """The version of registered model ``name`` (created on first use) that holds
    ``model_uri`` of run ``run_id``: registered once, found again later; its description set
    to ``description`` either way. Returns the version number."""
    from mlflow.exceptions import MlflowException

    client = tracker.client
    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # registered by an earlier call
    query = f"name = {quoted(name)} and run_id = {quoted(run_id)}"
    for version in client.search_model_versions(query):
        if version.source == model_uri:
            client.update_model_version(name, version.version, description=description)
            return str(version.version)
    model_id = model_uri.removeprefix("models:/")
    # MLflow resolves a models:/ source through the global tracking URI, not the client's: a
    # user's MLFLOW_TRACKING_URI pointing elsewhere would send it to the wrong store.
    with _tracking_uri(tracker.uri):
        version = client.create_model_version(name, model_uri, run_id=run_id, model_id=model_id,
                                              description=description)  # fmt: skip
    return str(version.version)
