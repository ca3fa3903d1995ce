"""One farm job, run where Ray places it: what it attacks (:class:`Candidate`), how a job builds
the candidate's encoder and runs its attack, the judges on raw frames, and how jobs' results
make a candidate's figures (:func:`aggregate`). :mod:`privar.farm.run` schedules them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
import torch

from privar.data.dataset import StudyData
from privar.data.manifest import label_index
from privar.encoders.artifact import fetch_encoder
from privar.farm.attacks import (
    AdversaryState,
    attack_reconstruction,
    fresh_action,
    privacy_rung,
    train_raw_judge,
)
from privar.farm.spec import FarmSpec
from privar.resources import GiB
from privar.study import EncoderConfig
from privar.tracking import Tracker
from privar.train.common import pick_device


@dataclass(frozen=True)
class Candidate:
    """An encoder to attack and the MLflow run its results go under. ``encoder_run``: the
    MLflow run whose artifact ``encoder/encoder.pt`` holds a trained encoder
    (:func:`privar.encoders.artifact.log_encoder`); else ``encoder`` is built fresh from the
    registry (a fixed baseline)."""

    label: str
    run_id: str
    encoder_run: str | None = None
    encoder: EncoderConfig | None = None


@dataclass
class FarmResult:
    """The aggregate metrics of one candidate, as logged to its run."""

    candidate: Candidate
    metrics: dict[str, float] = field(default_factory=dict)


def _build(c: Candidate, tracker: Tracker) -> torch.nn.Module:
    """The candidate's encoder on this node: downloaded from its run, or built (a baseline)."""
    from privar.encoders import create_encoder

    if c.encoder_run:
        return fetch_encoder(tracker, c.encoder_run)
    return create_encoder(c.encoder.name, **c.encoder.params).eval()


def _job(kind: str, name: str, c: Candidate, spec: FarmSpec, data: StudyData, tracker: Tracker,
         judge: dict | None = None,
         rung: tuple[int, AdversaryState | None] | None = None,
         ) -> tuple[dict[str, float], AdversaryState | None]:  # fmt: skip
    """One farm job, in a Ray worker: get the candidate encoder and run one attack; an
    adversary's up to epoch ``rung[0]``, on from state ``rung[1]``. Returns the attack's metrics,
    with ``job_s`` (the seconds the job took here), and the adversary's state to go on from
    (``None`` once it has trained every epoch, and for other attacks)."""
    t0 = time.perf_counter()
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources()
                                     .get("CPU", 1))))  # fmt: skip
    device, cfg = pick_device(), spec.train
    data.ensure_cache()  # this node's copy of the clip cache
    encoder = _build(c, tracker)
    num_privacy = len(label_index(data.records, "privacy"))
    state = None
    if kind == "adversary":
        m, (until, start) = spec.adversary(name), rung
        metrics, state = privacy_rung(data, encoder, m.name, num_privacy, cfg, spec.epochs,
                                      device, until, start, m.pretrained, spec.seed,
                                      **m.kwargs)  # fmt: skip
        state = state if until < spec.epochs else None
    elif kind == "action":
        m = spec.action
        metrics = fresh_action(data, encoder, m.name, len(label_index(data.records, "action")),
                               cfg, spec.epochs, device, m.pretrained, spec.seed,
                               **m.kwargs)  # fmt: skip
    else:
        judge_model = None
        if judge is not None:
            from privar.models import create_privacy_model

            judge_model = create_privacy_model(judge["name"], num_privacy,
                                               **spec.adversary(judge["name"]).kwargs)  # fmt: skip
            judge_model.load_state_dict(judge["state_dict"])
        m = spec.reconstruction
        metrics = attack_reconstruction(data, encoder, m.name, cfg, spec.recon_epochs, device,
                                        judge_model, spec.seed, **m.kwargs)  # fmt: skip
    return {**metrics, "job_s": time.perf_counter() - t0}, state


def _judge(name: str, spec: FarmSpec, data: StudyData) -> dict[str, Any]:
    """A privacy model trained on raw frames: the identity encoder's attack, and a judge of
    reconstructions. Returns its scores and its weights."""
    device, m = pick_device(), spec.adversary(name)
    data.ensure_cache()
    num_privacy = len(label_index(data.records, "privacy"))
    model, scores = train_raw_judge(data, m.name, num_privacy, spec.train, spec.epochs, device,
                                    spec.seed, m.pretrained, **m.kwargs)  # fmt: skip
    return {**scores, "name": name,
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}  # fmt: skip


def _is_identity(c: Candidate) -> bool:
    return c.encoder_run is None and c.encoder is not None and c.encoder.name == "identity"


def _reason(e: Exception) -> str:
    """One line saying why a job failed: the exception raised in the task (a Ray task error
    wraps it, and its own first line names only the task and its process)."""
    cause = getattr(e, "cause", None) or e
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


def aggregate(results: dict[tuple[str, str], dict[str, float]]) -> dict[str, float]:
    """A candidate's metrics from its jobs' results, keyed (kind, model name):
    ``privacy_acc_worst`` is the maximum over adversaries of both their figures (per frame and
    clip vote), ``privacy_acc_mean`` the mean of their per-frame figures; adversaries that
    racing stopped (``racing_stopped`` 1) do not count."""
    adv = [r for (kind, _), r in results.items()
           if kind == "adversary" and not r.get("racing_stopped")]  # fmt: skip
    out: dict[str, float] = {}
    if adv:
        out["privacy_acc_worst"] = max(max(r["privacy_acc"], r["privacy_acc_clip"]) for r in adv)
        out["privacy_acc_mean"] = statistics.mean(r["privacy_acc"] for r in adv)
    for (kind, _), r in results.items():
        if kind == "action":
            out["action_acc_fresh"] = r["action_acc_fresh"]
        if kind == "reconstruction":
            out.update({k: v for k, v in r.items() if k.startswith("recon_")})
    return out


# The study key that asks for each resource of a farm job's bundle, for error messages.
FARM_KEYS = {"CPU": "farm.cpus_per_job", "GPU": "farm.gpus_per_job",
             "memory": "farm.memory_gb_per_job"}  # fmt: skip
WAIT_SAY_EVERY_S = 30.0


def job_bundle(f: FarmSpec, data_cpus: float) -> dict[str, float]:
    """One farm job's placement-group bundle: its CPUs (plus ``data_cpus`` for the Ray Data
    tasks that decode its clips when there is no clip cache), GPU fraction and memory."""
    bundle = {"CPU": f.cpus_per_job + data_cpus, "GPU": f.gpus_per_job,
              "memory": f.memory_gb_per_job * GiB}  # fmt: skip
    return {k: v for k, v in bundle.items() if v > 0}


def _located(fn: Callable[..., Any], *args: Any) -> tuple[Any, str]:
    """A Ray task: ``fn(*args)`` and the id of the node it ran on, for the job's run."""
    return fn(*args), ray.get_runtime_context().get_node_id()
