"""The farm on Ray: every candidate encoder attacked by parallel jobs, logged to MLflow.

A *candidate* is a trained encoder or a fixed baseline encoder (identity, down-sampling). A
trained encoder lives in MLflow, as the artifact ``encoder/encoder.pt`` of a run (a finished
trial's, or the run ``privar farm --checkpoint`` logged a local file to): each job downloads it
through the tracker into a temporary folder on whatever node runs the job and loads it
(:func:`privar.encoders.artifact.fetch_encoder`); no node reads a path another node wrote. A
baseline is built fresh from the registry. For each candidate, one Ray task per job:

* ``adversary`` jobs, one per privacy model of the farm's adversaries;
* a ``reconstruction`` job, judged by the strongest adversary trained on raw frames (the
  *judges*, trained first: they are also the identity baseline's attacks);
* an ``action`` job, a fresh action model.

What to attack with, and what each job reserves, is a :class:`~privar.farm.spec.FarmSpec`
(every model's keyword arguments already resolved through its registry); the farm never reads
the study.

Each finished task is one line, ending with how far the farm got: ``[5/20 done, 01:10 elapsed,
~02:00 left]`` (judges and jobs alike, :func:`~privar.console.progress_note`; the clock starts
once the farm's placement group is placed).

Tasks run inside one placement group, one task per bundle at a time, so the farm never competes
with itself for CPUs it cannot get (and never waits on resources a search still holds: the farm
starts when the search is done). Without a clip cache each bundle also holds a CPU for the Ray
Data tasks that decode the job's clips. A task that crashes is retried
(``FarmSpec.retries``); one that still fails is logged as a FAILED run and the others go on. A
resumed farm skips every job that already has a FINISHED run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from privar.cluster import capacity, waiting_for
from privar.console import progress_note
from privar.data.dataset import StudyData
from privar.data.manifest import label_index
from privar.encoders.artifact import fetch_encoder
from privar.farm.attacks import attack_privacy, attack_reconstruction, fresh_action, train_raw_judge
from privar.farm.spec import FarmSpec
from privar.resources import GiB, check_group, concurrency, describe
from privar.study import EncoderConfig
from privar.tracking import Tracker
from privar.tracking.runs import ADVERSARY, ENCODER, ERROR, NODE
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


def _job(kind: str, name: str, c: Candidate, spec: FarmSpec, data: StudyData,
         judge: dict | None, tracker: Tracker) -> dict[str, float]:  # fmt: skip
    """One farm job, in a Ray worker: get the candidate encoder and run one attack."""
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources()
                                     .get("CPU", 1))))  # fmt: skip
    device, cfg = pick_device(), spec.train
    data.ensure_cache()  # this node's copy of the clip cache
    encoder = _build(c, tracker)
    num_privacy = len(label_index(data.records, "privacy"))
    if kind == "adversary":
        m = spec.adversary(name)
        return attack_privacy(data, encoder, m.name, num_privacy, cfg, spec.epochs, device,
                              m.pretrained, spec.seed, **m.kwargs)  # fmt: skip
    if kind == "action":
        m = spec.action
        return fresh_action(data, encoder, m.name, len(label_index(data.records, "action")), cfg,
                            spec.epochs, device, m.pretrained, spec.seed, **m.kwargs)  # fmt: skip
    judge_model = None
    if judge is not None:
        from privar.models import create_privacy_model

        judge_model = create_privacy_model(judge["name"], num_privacy,
                                           **spec.adversary(judge["name"]).kwargs)  # fmt: skip
        judge_model.load_state_dict(judge["state_dict"])
    m = spec.reconstruction
    return attack_reconstruction(data, encoder, m.name, cfg, spec.recon_epochs, device,
                                 judge_model, spec.seed, **m.kwargs)  # fmt: skip


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
    clip vote), ``privacy_acc_mean`` the mean of their per-frame figures."""
    adv = [r for (kind, _), r in results.items() if kind == "adversary"]
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


class Tally:
    """Counts the farm's finished tasks out of ``total`` and says how far it got:
    :meth:`tick` -> ``[5/20 done, 01:10 elapsed, ~02:00 left]``."""

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done, self.clock = total, 0, clock
        self.t0 = clock()

    def tick(self) -> str:
        self.done += 1
        note = progress_note(self.done, self.total, self.clock() - self.t0)
        return f"[{self.done}/{self.total} done, {note}]"


class Farm:
    """Attacks candidates with the farm ``spec`` on ``data`` (prepared); results go to
    ``tracker`` under each candidate's run, in experiment ``experiment_id``."""

    def __init__(self, spec: FarmSpec, data: StudyData, tracker: Tracker, experiment_id: str,
                 say: Callable[[str], None] = print) -> None:  # fmt: skip
        self.spec, self.data, self.tracker, self.exp, self.say = (
            spec, data, tracker, experiment_id, say)  # fmt: skip
        # Without a clip cache a job decodes through Ray Data tasks, which run in the job's
        # placement group: each bundle then holds one CPU for them beside the job's own.
        self.data_cpus = 0 if data.cache is not None else 1
        self.bundle = job_bundle(spec, self.data_cpus)
        self.capacity = capacity()
        check_group([self.bundle], self.capacity, FARM_KEYS, "each farm job")
        self.data_ref = ray.put(data)

    def _wait_ready(self, pg, num_bundles: int) -> None:
        """Wait until the placement group is placed, saying every half minute what it waits
        for: a cluster busy with other work, or nodes the autoscaler is adding."""
        ready, t0, said = pg.ready(), time.monotonic(), -WAIT_SAY_EVERY_S
        while not ray.wait([ready], timeout=5.0)[0]:
            waited = time.monotonic() - t0
            if waited - said >= WAIT_SAY_EVERY_S:
                said = waited
                self.say(f"  farm: waiting {waited:.0f} s for {num_bundles} x "
                         f"{describe(self.bundle)}; {waiting_for(self.capacity)}")  # fmt: skip

    def _run(self, pg, num_bundles: int, calls: list) -> Iterator[tuple[Any, Any]]:
        """Run ``calls`` ([(key, fn, args)]) as Ray tasks, each pinned to a free bundle of
        ``pg``, at most one per bundle; yields (key, (result, the id of the node it ran on)
        or the exception it ended with)."""
        f = self.spec
        free, pending, queue = list(range(num_bundles)), {}, list(calls)
        while queue or pending:
            while queue and free:
                key, fn, args = queue.pop(0)
                bundle = free.pop()
                ref = ray.remote(_located).options(
                    num_cpus=f.cpus_per_job, num_gpus=f.gpus_per_job,
                    memory=self.bundle.get("memory", 0), max_retries=f.retries,
                    retry_exceptions=True,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        pg, placement_group_bundle_index=bundle,
                        placement_group_capture_child_tasks=True),
                ).remote(fn, *args)  # fmt: skip
                pending[ref] = (key, bundle)
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            key, bundle = pending.pop(ref)
            free.append(bundle)
            try:
                yield key, ray.get(ref)
            except Exception as e:  # retried f.retries times already
                yield key, e

    def attack(self, candidates: list[Candidate]) -> list[FarmResult]:
        """Run every job of every candidate (skipping jobs already FINISHED in MLflow) and log
        each job's run and each candidate's aggregate metrics."""
        f = self.spec
        jobs: list[tuple[Candidate, str, str]] = []
        done: dict[str, dict[tuple[str, str], dict]] = {c.run_id: {} for c in candidates}
        for c in candidates:
            wanted = [("adversary", a.name) for a in f.adversaries]
            wanted.append(("action", f.action.name))
            if f.reconstruction:
                wanted.append(("reconstruction", f.reconstruction.name))
            for kind, name in wanted:
                previous = self._finished_job(c, kind, name)
                if previous is not None:
                    done[c.run_id][(kind, name)] = previous
                else:
                    jobs.append((c, kind, name))
        num_bundles = concurrency([self.bundle], self.capacity,
                                  max(len(jobs), len(f.adversaries), 1))  # fmt: skip
        judging = any(kind == "reconstruction" for _, kind, _ in jobs)
        # The judges are the identity encoder's adversaries: no need to train them twice.
        judged = [j for j in jobs if judging and _is_identity(j[0]) and j[1] == "adversary"]
        pg = placement_group([self.bundle] * num_bundles, strategy="PACK")
        self._wait_ready(pg, num_bundles)
        tally = Tally(len(f.adversaries) * judging + len(jobs) - len(judged))
        try:
            judge = None
            if judging:
                self.say(f"  farm: {len(f.adversaries)} judges on raw frames first, "
                         f"{num_bundles} at a time")  # fmt: skip
                calls = [(a.name, _judge, (a.name, f, self.data_ref)) for a in f.adversaries]
                judges = {}
                for name, result in self._run(pg, num_bundles, calls):
                    if isinstance(result, Exception):
                        raise result
                    judges[name] = {**result[0], "node": result[1]}
                    self.say(f"  farm: judge {name} on raw frames: "
                             f"{_shown(judges[name])}  {tally.tick()}")  # fmt: skip
                judge = max(judges.values(), key=lambda j: (j["privacy_acc_clip"],
                                                           j["privacy_acc"]))  # fmt: skip
                self.say(f"  farm: judge of reconstructions: {judge['name']} on raw frames, "
                         f"privacy_acc {judge['privacy_acc']:.3f}")  # fmt: skip
                for c, kind, name in judged:
                    result = {k: v for k, v in judges[name].items()
                              if k in ("privacy_acc", "privacy_acc_clip", "epochs")}  # fmt: skip
                    self._log_job(c, kind, name, result, node=judges[name]["node"])
                    done[c.run_id][(kind, name)] = result
                    jobs.remove((c, kind, name))
            self.say(f"  farm: {len(jobs)} jobs for {len(candidates)} encoders "
                     f"({num_bundles} at a time)")  # fmt: skip
            calls = [((c, kind, name), _job, (kind, name, c, f, self.data_ref,
                                               judge if kind == "reconstruction" else None,
                                               self.tracker))
                     for c, kind, name in jobs]  # fmt: skip
            for (c, kind, name), result in self._run(pg, num_bundles, calls):
                if isinstance(result, Exception):
                    self._log_job(c, kind, name, {}, failed=_reason(result), tally=tally)
                    continue
                metrics, node = result
                self._log_job(c, kind, name, metrics, node=node, tally=tally)
                done[c.run_id][(kind, name)] = metrics
        finally:
            remove_placement_group(pg)
        out = []
        for c in candidates:
            metrics = aggregate(done[c.run_id])
            self.tracker.log_metrics(c.run_id, metrics)
            if c.encoder is not None:  # a baseline's run holds only the farm's work: close it
                self.tracker.finish(c.run_id)
            out.append(FarmResult(c, metrics))
        return out

    def _finished_job(self, c: Candidate, kind: str, name: str) -> dict[str, float] | None:
        runs = self.tracker.find_runs(self.exp, kind, c.run_id, {ADVERSARY: name})
        for run in runs:
            if run.info.status == "FINISHED":
                return dict(run.data.metrics)
        return None

    def _log_job(self, c: Candidate, kind: str, name: str, result: dict[str, float],
                 failed: str | None = None, node: str | None = None,
                 tally: Tally | None = None) -> None:  # fmt: skip
        """Log one job's run under the candidate's and say its result (with how far the farm
        got, when ``tally`` counts the job)."""
        tags = {ADVERSARY: name, ENCODER: c.label, **({NODE: node} if node else {})}
        run_id = self.tracker.create_run(self.exp, kind, f"{kind}-{name}", c.run_id, tags)
        self.tracker.log_metrics(run_id, result)
        progress = f"  {tally.tick()}" if tally is not None else ""
        if failed:
            self.tracker.set_tags(run_id, {ERROR: failed[:500]})
            self.say(f"  farm: {c.label} {kind} {name} FAILED: {failed}{progress}")
        else:
            self.say(f"  farm: {c.label} {kind} {name}: {_shown(result)}{progress}")
        self.tracker.finish(run_id, "FAILED" if failed else "FINISHED")


def _shown(result: dict[str, Any]) -> str:
    """A job's metrics for the console: ``privacy_acc 0.325  privacy_acc_clip 0.317``."""
    return "  ".join(f"{k} {v:.3f}" for k, v in result.items()
                     if k != "epochs" and isinstance(v, int | float))  # fmt: skip
