"""The MLflow run tree of a study, through ``MlflowClient`` with explicit ids.

This module owns the tree: every tag privar writes is a constant below, and the helpers for
what callers do to runs (create, find again, reopen, finish, prune) are :class:`Tracker` methods.

DESIGN.md's names: one experiment per study, tagged for MLflow 3's model-training view
(``mlflow.experimentKind=custom_model_development``) and described (``mlflow.note.content``, the
description the UI shows); a study run (tag ``privar.kind=study``,
``privar.study=<name>``, ``privar.folder=<its search folder on the driver>``, read only by
``privar resume`` on that machine); trial runs under it (``privar.kind=trial``,
``privar.trial=<the search's trial id>``, ``privar.searched=<the sampled keys, comma-joined>``,
every setting that shapes it as a dotted param, and once the encoder is logged as the artifact
``encoder/encoder.pt``, ``privar.encoder_artifact=encoder/encoder.pt``; ``privar.pruned=true`` on
an early-stopped one; ``privar.alias=pareto-1,knee`` on one the registry holds, with the logged
model's URI in ``privar.model``); farm runs under a trial (``privar.kind=adversary`` /
``reconstruction`` / ``action``, ``privar.adversary=<model>``, ``privar.error=<why>`` on a failed
one); baselines under the study run (``privar.kind=baseline``, ``privar.encoder=<name>``,
``privar.baseline=<label>``); a ``privar farm --checkpoint`` run (``privar.kind=checkpoint``,
``privar.checkpoint=<file name>``, the encoder as its artifact). Nesting is MLflow's own
``mlflow.parentRunId`` tag, so the UI shows the tree. Run names are for readers
(:mod:`privar.tracking.names`); runs are found again by tag, never by name.

Nothing here records a path on a node's disk for another node to read: encoders travel as run
artifacts (:meth:`Tracker.log_artifact`, :meth:`Tracker.download`); the format is
:mod:`privar.encoders.artifact`'s.

Why the client and not ``mlflow.start_run``: the fluent API keeps an active run and experiment
per process, and Ray's MLflow helpers silently ignore an experiment name once one is set. Every
call here names its experiment or run, so a Ray worker cannot log into the wrong place, and a
resumed study finds its runs again by tag instead of creating a second copy.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from privar.errors import UserError
from privar.tracking.names import param_text

KIND = "privar.kind"
TRIAL = "privar.trial"
ENCODER = "privar.encoder"
ADVERSARY = "privar.adversary"
BASELINE = "privar.baseline"
STUDY = "privar.study"
FOLDER = "privar.folder"
ENCODER_SAVED = "privar.encoder_artifact"
PRUNED = "privar.pruned"
ERROR = "privar.error"
CHECKPOINT = "privar.checkpoint"
NODE = "privar.node"  # the Ray node a trial or farm job ran on
RACING = "privar.racing"  # how a raced farm adversary fared: stopped at, or ran all, epochs
SEARCHED = "privar.searched"  # a trial's sampled keys, comma-joined
ALIAS = "privar.alias"  # a registered trial's registry aliases, comma-joined
MODEL = "privar.model"  # a registered trial's logged MLflow model, models:/<id>
PARENT = "mlflow.parentRunId"
ENDED = ("FINISHED", "FAILED", "KILLED")
# Experiment tags MLflow's UI reads: the kind picks MLflow 3's model-training view over the GenAI
# one (mlflow/server/js: ExperimentKind.CUSTOM_MODEL_DEVELOPMENT); the note is its description.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
NOTE = "mlflow.note.content"
PARAMS_PER_BATCH = 100  # MLflow's most params in one log_batch request
# How long a study waits out an MLflow server that is away (restarting, overloaded): MLflow's
# client retries a request that cannot connect, times out or gets 429/5xx, with exponential
# backoff (urllib3: 0, 2, 4, ... 64, 120 s apart). 8 retries: a request lands once a server
# that refuses connections is back within about 4 minutes (one that hangs gets MLflow's 120 s
# read timeout per try), else it raises, and the trial, farm job or study it belongs to fails
# with that error; nothing logged is dropped silently. Set in every process that builds a
# client (Ray workers included); a user's own MLFLOW_HTTP_REQUEST_* settings win.
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "8", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def resolve_uri(uri: str | None) -> str:
    """The tracking URI to use: ``uri``, or ``sqlite:///mlflow.db`` in the working directory
    (MLflow's own default). Local stores get absolute paths, because Ray workers run in other
    directories. An ``http(s)`` server must answer ``/health`` within 5 s, else one clear line."""
    if not uri:
        return f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).close()
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise UserError(f"cannot reach the MLflow server at {uri}: {reason}") from None
        return uri.rstrip("/")
    if "://" not in uri:  # a folder: MLflow's file store
        return Path(uri).resolve().as_uri()
    return uri


SEARCH_PAGE = 1000  # runs per search request; find_runs follows the pages


def quoted(value: str) -> str:
    """``value`` as a string literal of MLflow's search filter. The grammar has no escapes: a
    value is quoted with whichever quote it does not hold."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"cannot search MLflow for a tag value holding both quotes: {value!r}")


class Tracker:
    """A study's run tree in one MLflow tracking store. Picklable (it holds only the URI), so
    the same object travels to Ray workers."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            for key, value in HTTP_RETRIES.items():
                os.environ.setdefault(key, value)
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def __getstate__(self) -> dict:
        return {"uri": self.uri, "_client": None}

    # -- experiments and runs ----------------------------------------------------------------

    def experiment_url(self, experiment_id: str) -> str:
        """Where a person looks at the experiment: its page in the MLflow UI when the store is a
        server, opened in the model-training view (MLflow 3.17's UI starts a new browser in its
        GenAI view whatever the experiment's kind), else the store's URI (``mlflow ui`` there)."""
        if self.uri.startswith(("http://", "https://")):
            base = self.uri.rstrip("/")
            return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
        return self.uri

    def experiment(self, name: str, description: str | None = None) -> str:
        """The id of experiment ``name``, created on first use, and tagged (again, when it
        exists) for MLflow's model-training view, with ``description`` as the text the UI shows
        when given. A local sqlite store keeps its artifacts beside the database
        (``mlartifacts/``), wherever the process runs from."""
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            experiment_id = exp.experiment_id
        else:
            location = None
            if self.uri.startswith("sqlite:///"):
                db = Path(self.uri.removeprefix("sqlite:///"))
                location = (db.parent / "mlartifacts" / name).as_uri()
            experiment_id = self.client.create_experiment(name, artifact_location=location)
        tags = {EXPERIMENT_KIND: MODEL_TRAINING, **({NOTE: description} if description else {})}
        for key, value in tags.items():
            self.client.set_experiment_tag(experiment_id, key, value)
        return experiment_id

    def create_run(self, experiment_id: str, kind: str, name: str, parent: str | None = None,
                   tags: Mapping[str, str] | None = None,
                   start_time: float | None = None) -> str:  # fmt: skip
        """A new RUNNING run; ``start_time`` (seconds since the epoch, default now) lets a run
        logged after its work was done show that work's duration in the UI."""
        all_tags = {KIND: kind, **(tags or {})}
        if parent:
            all_tags[PARENT] = parent
        start_ms = None if start_time is None else int(start_time * 1000)
        run = self.client.create_run(experiment_id, start_time=start_ms, tags=all_tags,
                                     run_name=name)  # fmt: skip
        return run.info.run_id

    def find_runs(self, experiment_id: str, kind: str, parent: str | None = None,
                  tags: Mapping[str, str] | None = None) -> list:  # fmt: skip
        """Runs of ``kind`` (under ``parent``, with ``tags``), newest first: every page of
        them, however many there are."""
        wanted = {KIND: kind, **({PARENT: parent} if parent else {}), **(tags or {})}
        query = " and ".join(f"tags.`{k}` = {quoted(str(v))}" for k, v in wanted.items())
        runs, token = [], None
        while True:
            page = self.client.search_runs([experiment_id], query, max_results=SEARCH_PAGE,
                                           order_by=["attributes.start_time DESC"],
                                           page_token=token)  # fmt: skip
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def trial_run(self, experiment_id: str, study_run: str, trial_id: str, name: str,
                  params: Mapping[str, Any], encoder: str,
                  searched: tuple[str, ...] = ()) -> str:  # fmt: skip
        """The run ``name`` of search trial ``trial_id``, with ``params`` (every setting that
        shapes it; ``searched``: the sampled ones' keys): found again by its tag when the study
        resumes (marked running again, given only the params it lacks: MLflow never changes a
        logged one), else created."""
        found = self.find_runs(experiment_id, "trial", study_run, {TRIAL: trial_id})
        if found:
            run_id, logged = found[0].info.run_id, found[0].data.params
            self.reopen(run_id)
            self.log_params(run_id, {k: v for k, v in params.items() if k not in logged})
            return run_id
        run_id = self.create_run(experiment_id, "trial", name, study_run,
                                 {TRIAL: trial_id, ENCODER: encoder,
                                  SEARCHED: ",".join(searched)})  # fmt: skip
        self.log_params(run_id, params)
        return run_id

    def baseline_run(self, experiment_id: str, study_run: str, label: str, encoder: str,
                     params: Mapping[str, Any]) -> str:  # fmt: skip
        """The run of baseline ``label`` (encoder ``encoder`` with ``params``) under
        ``study_run``, named ``label``: found again by its tag, else created once."""
        found = self.find_runs(experiment_id, "baseline", study_run, {BASELINE: label})
        if found:
            return found[0].info.run_id
        run_id = self.create_run(experiment_id, "baseline", label, study_run,
                                 {ENCODER: encoder, BASELINE: label})  # fmt: skip
        self.log_params(run_id, {f"encoder.params.{k}": v for k, v in params.items()})
        return run_id

    def study_runs(self, name: str) -> list:
        """The study runs of study ``name`` that have a search folder, newest first; none when
        the study has no experiment yet."""
        exp = self.client.get_experiment_by_name(name)
        runs = self.find_runs(exp.experiment_id, "study") if exp else []
        return [r for r in runs if FOLDER in r.data.tags]

    # -- logging -----------------------------------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """``params`` as text (:func:`~privar.tracking.names.param_text`: cut to MLflow's
        limit), in batches of the most MLflow takes at once."""
        from mlflow.entities import Param

        batch = [Param(k, param_text(v)) for k, v in params.items()]
        for i in range(0, len(batch), PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=batch[i : i + PARAMS_PER_BATCH])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(run_id, k, v)

    def log_artifact(self, run_id: str, path: str | Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def log_image(self, run_id: str, image: np.ndarray, name: str) -> None:
        """``image`` uint8 (H, W, 3), saved as the PNG artifact ``name``."""
        self.client.log_image(run_id, image, artifact_file=name)

    def reopen(self, run_id: str) -> None:
        """Mark a run RUNNING again (a resumed trial or study)."""
        self.client.update_run(run_id, status="RUNNING")

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        """End a run as FINISHED, FAILED or KILLED (anything else is a ValueError)."""
        if status not in ENDED:
            raise ValueError(f"a run ends as one of {', '.join(ENDED)}, not {status!r}")
        self.client.set_terminated(run_id, status)

    def close_running(self, experiment_id: str, root: str, status: str = "FAILED") -> int:
        """End as ``status`` every run under ``root`` (its children, theirs...) still RUNNING,
        so that no run of a study outlives it; returns how many were ended."""
        running = self.client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                          max_results=SEARCH_PAGE)  # fmt: skip
        parents = {r.info.run_id: r.data.tags.get(PARENT) for r in running}

        def under_root(run_id: str | None, depth: int = 0) -> bool:
            if run_id is None or depth > 8:  # the tree is 3 deep; a cycle cannot hang this
                return False
            if run_id not in parents:
                parents[run_id] = self.client.get_run(run_id).data.tags.get(PARENT)
            return parents[run_id] == root or under_root(parents[run_id], depth + 1)

        ended = [r.info.run_id for r in running if under_root(r.info.run_id)]
        for run_id in ended:
            self.finish(run_id, status)
        return len(ended)

    def prune(self, run_id: str) -> None:
        """End a trial the scheduler stopped early: tagged pruned, KILLED."""
        self.set_tags(run_id, {PRUNED: "true"})
        self.finish(run_id, "KILLED")

    def download(self, run_id: str, path: str, dst: str | Path) -> Path:
        """Artifact ``path`` of run ``run_id``, copied into the local folder ``dst``."""
        return Path(self.client.download_artifacts(run_id, path, str(dst)))
