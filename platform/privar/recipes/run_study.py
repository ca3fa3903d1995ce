"""``privar run`` and ``privar resume``: a study from its file to a farm-checked Pareto front.

Top to bottom: check the study file and the tracking store (fast failures first), start or join
Ray, prepare the data once (generate the synthetic set if missing, probe, decode into the clip
cache), open the study's MLflow run, search, farm the candidates, and print the front.

Every ``privar run`` is a new study run in the study's MLflow experiment, with its own search
folder ``out_dir/<name>/<study run id>/`` on the driver; ``privar resume`` picks the newest study
run that did not finish and continues its search and farm where they stopped. The study file and
the resolved study are artifacts of the study run, trained encoders artifacts of their trial
runs: ``privar farm`` reads both back from MLflow, never from a path another machine wrote.

What the study leaves in MLflow explains itself: the experiment is described
(:func:`study_description`) and opens in MLflow's model-training view, baselines are named by
encoder and parameters and show the same sample clips as the trials, and no run of the study is
left RUNNING when it ends, however it ends (:meth:`~privar.tracking.Tracker.close_running`).

The search gets a :class:`~privar.search.spec.SearchSpec` whose ``make_trial`` is
:func:`~privar.recipes.common.train_spec` bound to the study and its label counts; the farm gets
a :class:`~privar.farm.spec.FarmSpec`. Nothing below this file reads the study.
"""

from __future__ import annotations

import contextlib
import functools
import math
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from privar import pareto
from privar.cluster import capacity, connect
from privar.data.dataset import StudyData, eval_split
from privar.data.manifest import one_split_labels
from privar.data.pipeline import open_study_data
from privar.errors import UserError
from privar.farm.run import FARM_KEYS, Candidate, Farm, job_bundle
from privar.front import select_front
from privar.recipes.common import (
    RESOLVED,
    clip_shape,
    echo,
    farm_spec,
    label_counts,
    load_checked,
    train_spec,
)
from privar.resources import addable, check_group, waits_for_a_new_node
from privar.search.spec import SearchSpec
from privar.study import EncoderConfig, Study
from privar.tracking import Tracker, resolve_uri
from privar.tracking.names import baseline_run_name, distinct, format_value, short_params
from privar.tracking.runs import ENCODER_SAVED, FOLDER, STUDY, TRIAL

if TYPE_CHECKING:  # the search imports Ray Tune: only when a study runs
    from privar.search.trial import SearchContext


def run_study(path: str, address: str | None = None, tracking_uri: str | None = None,
              overrides: dict | None = None, resume: bool = False,
              say: Callable[[str], None] = echo) -> int:  # fmt: skip
    t0 = time.monotonic()
    study = load_checked(path, overrides)  # before Ray Tune's imports: a bad file fails at once
    from privar.search.trial import SearchContext
    from privar.search.tuner import plan_trials, trial_bundles

    tracker = Tracker(resolve_uri(tracking_uri or study.tracking.uri))
    check_writable(Path(study.out_dir), "out_dir")
    if study.search.storage and "://" not in study.search.storage:
        check_writable(Path(study.search.storage), "search.storage")
    resources = connect(address)  # a wrong address fails in seconds, before any data work
    say(f"study {study.name}: scheme {study.scheme}, encoder {study.encoder.name}, "
        f"{study.search.num_trials} trials ({study.search.sampler}), "
        f"Ray {resources.get('CPU', 0):g} CPUs{f' at {address}' if address else ' (local)'}, "
        f"MLflow {tracker.uri}")  # fmt: skip

    cap = capacity()
    # A trial no node can hold fails now, not after hours of waiting.
    plan_trials(study.resources, study.search.concurrency, cap)
    if waits_for_a_new_node(trial_bundles(study.resources), cap):  # say so before the wait
        say(f"  cluster: no node holds a trial yet; the autoscaler can add {addable(cap)}")
    data = open_study_data(study.data, seed=study.seed)
    if study.farm.enabled:  # so does a farm job, before the search spends anything
        cached = data.cache_root is not None and data.cache_fits
        check_group([job_bundle(farm_spec(study), 0 if cached else 1)], cap, FARM_KEYS,
                    "each farm job")  # fmt: skip
    data.prepare()
    short = data.short()
    say(f"  data: {len(data.records)} videos, {len(data.quarantined)} quarantined, "
        f"ready in {time.monotonic() - t0:.0f} s")  # fmt: skip
    if short:  # padded, as the papers do; a reader should know how many
        say(f"  {len(short)} videos have fewer than the {data.spec.frames_needed} frames a clip "
            f"spans (the shortest: {min(r.num_frames for r in short)}): their clips repeat "
            f"their last frame")  # fmt: skip
    for q in data.quarantined:
        say(f"  quarantined: {q.path}: {q.reason}")
    for line in one_split_labels(data.records):
        say(f"  warning: {line}")
    data.share_quarantine()  # what trials and farm jobs quarantine reaches this driver

    experiment_id, study_run, folder = _open_study_run(tracker, study, path, resume)
    tracker.log_metrics(study_run, {**chance_levels(data), "short_videos": len(short)})
    say(f"  MLflow experiment {study.name} ({experiment_id}), study run {study_run}")
    ctx = SearchContext(tracker, experiment_id, study_run, folder)
    try:
        status = _search_farm_front(study, data, ctx, resume, say)
    except BaseException as e:  # interrupted or broken: no run of the study stays RUNNING
        status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(Exception):  # the error to report is e, not the clean-up's
            tracker.close_running(experiment_id, study_run, status)
            tracker.finish(study_run, status)
        if isinstance(e, KeyboardInterrupt):
            say(f"interrupted: `privar resume {path}` finishes the study")
        raise
    # A trial whose process died before it closed its run (Tune gave up on it) is still
    # RUNNING: it failed.
    tracker.close_running(experiment_id, study_run, "FAILED")
    tracker.finish(study_run, status)
    if status == "FAILED":
        return 1
    say(f"done in {time.monotonic() - t0:.0f} s; MLflow: {tracker.experiment_url(experiment_id)}")
    return 0


MIN_FREE_MIB = 64  # what an output folder must have free at start: a few checkpoints' worth


def check_writable(folder: Path, key: str) -> None:
    """Stop before any compute when the study cannot write where study key ``key`` says:
    ``folder`` is created if missing, must take a file, and must have :data:`MIN_FREE_MIB` free
    (a full or read-only disk would otherwise fail the first checkpoint, minutes in)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".privar-probe-"):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as e:
        raise UserError(f"{key} {folder}: cannot write there: {e.strerror or e}") from None
    if free < MIN_FREE_MIB * 2**20:
        raise UserError(f"{key} {folder}: only {free // 1024} KiB free; a study needs "
                        f"{MIN_FREE_MIB} MiB there at least")  # fmt: skip


def _search_farm_front(study: Study, data: StudyData, ctx: SearchContext, resume: bool,
                       say: Callable[[str], None]) -> str:  # fmt: skip
    """The search, the farm and the front of the open study run ``ctx.study_run``
    (a :class:`~privar.search.trial.SearchContext`); returns how the study run ends. The console
    gives each stage's own time."""
    from privar.search.tuner import has_search_state, run_search

    t0 = time.monotonic()
    tracker, experiment_id, study_run = ctx.tracker, ctx.experiment_id, ctx.study_run
    search = search_spec(study, label_counts(data))
    outcomes = run_search(search, data, ctx, say=say,
                          resume=resume and has_search_state(search, ctx))  # fmt: skip
    tracker.log_metrics(study_run, {"trials": len(outcomes)})
    _gather_quarantine(data, tracker, study_run, "search", say)
    searched = time.monotonic()
    say(f"  search done: {len(outcomes)} trials in {searched - t0:.0f} s")
    _print_trials(outcomes, say)
    for o in outcomes:  # Tune ends a stopped trial's process: close its run here
        if o.run_id and not o.complete and not o.error:
            tracker.prune(o.run_id)
    failed = [o for o in outcomes if o.error]
    if failed and len(failed) == len(outcomes):
        say(f"privar: every trial failed; the first: {failed[0].error}")
        return "FAILED"
    if study.farm.enabled:
        attacked = candidates(tracker, experiment_id, study_run, study, data)
        Farm(farm_spec(study), data, tracker, experiment_id, say).attack(attacked)
        _gather_quarantine(data, tracker, study_run, "farm", say)
        say(f"  farm done in {time.monotonic() - searched:.0f} s")
    select_front(tracker, experiment_id, study_run, study.name, ctx.folder, clip_shape(study),
                 say)  # fmt: skip
    return "FINISHED"


def _gather_quarantine(data: StudyData, tracker: Tracker, study_run: str, stage: str,
                       say: Callable[[str], None]) -> None:  # fmt: skip
    """Say which videos the ``stage``'s trials or jobs quarantined, and log the study's
    ``quarantined`` count: the probe's and every worker's so far."""
    for q in data.gather_quarantine():
        say(f"  quarantined in the {stage}: {q.path}: {q.reason}")
    tracker.log_metrics(study_run, {"quarantined": len(data.quarantined)})


def search_spec(study: Study, labels: tuple[int, int]) -> SearchSpec:
    """The study's search; each trial's training run is :func:`train_spec` of the study with the
    trial's sampled values (``labels``: the data's label counts)."""
    return SearchSpec(name=study.name, search=study.search, resources=study.resources,
                      epochs=study.train.epochs, seed=study.seed,
                      sample_frames=study.tracking.sample_frames,
                      make_trial=functools.partial(train_spec, study, labels))  # fmt: skip


def _open_study_run(tracker: Tracker, study: Study, path: str,
                    resume: bool) -> tuple[str, str, Path]:  # fmt: skip
    """(experiment id, study run id, search folder): a new study run, or the newest
    unfinished one to resume."""
    experiment_id = tracker.experiment(study.name, study_description(study))
    if resume:
        for run in tracker.study_runs(study.name):
            if run.info.status != "FINISHED":
                tracker.reopen(run.info.run_id)
                return experiment_id, run.info.run_id, Path(run.data.tags[FOLDER])
        raise UserError(f"{path}: no unfinished run of study {study.name!r} in {tracker.uri}")
    run_id = tracker.create_run(experiment_id, "study", study.name, tags={STUDY: study.name})
    folder = (Path(study.out_dir) / study.name / run_id).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    resolved = folder / "study.yaml"
    resolved.write_text(yaml.safe_dump(_plain(asdict(study)), sort_keys=False))
    tracker.set_tags(run_id, {FOLDER: str(folder)})  # for `privar resume`, on this machine
    tracker.log_artifact(run_id, path, "study")
    tracker.log_artifact(run_id, resolved, RESOLVED)
    tracker.log_params(run_id, {"scheme": study.scheme, "encoder": study.encoder.name,
                                "action_model": study.action_model.name,
                                "privacy_model": study.privacy_model.name,
                                "sampler": study.search.sampler,
                                "num_trials": study.search.num_trials})  # fmt: skip
    return experiment_id, run_id, folder


def _plain(x):
    """Tuples to lists, so the resolved study dumps as plain YAML."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def chance_levels(data: StudyData) -> dict[str, float]:
    """The majority class's share of the validation split, for actions and privacy labels."""
    split = eval_split(data)
    records = [data.records[i] for i in data.usable(split)]
    return {f"{key}_chance": max(Counter(getattr(r, key) for r in records).values()) /
            len(records) for key in ("action", "privacy")}  # fmt: skip


def study_description(study: Study) -> str:
    """What the study is, in a few lines of Markdown: the experiment's description in MLflow."""

    def model(m) -> str:
        return " ".join(s for s in (m.name, short_params(m.params)) if s)

    def searched(key: str, p) -> str:
        if p.type == "choice":
            return f"`{key}` in {{{', '.join(format_value(v) for v in p.values)}}}"
        scale = " (log)" if p.type == "loguniform" or p.log else ""
        return f"`{key}` in [{format_value(p.low)}, {format_value(p.high)}]{scale}"

    d, s, f = study.data, study.search, study.farm
    space = ", ".join(searched(k, p) for k, p in s.space.items()) or "nothing"
    frames = (f"{d.segments} segments of {d.clip_len} frames" if d.segments
              else f"{d.clip_len} frames, stride {d.stride}")  # fmt: skip
    lines = [
        f"**{study.name}**: privar study, scheme `{study.scheme}`, encoder "
        f"`{model(study.encoder)}`, action model `{model(study.action_model)}`, privacy model "
        f"`{model(study.privacy_model)}`, {study.train.epochs} epochs.",
        f"Searches {space} with `{s.sampler}`, {s.num_trials} trials, objectives: action "
        f"accuracy up, privacy accuracy down.",
        f"Data: `{d.adapter}` at `{d.root}`, clips of {frames} at {d.size[0]}x{d.size[1]}.",
    ]
    if f.enabled:
        baselines = ", ".join(baseline_run_name(b.name, b.params) for b in f.baselines)
        lines.append(f"Farm: adversaries {', '.join(f.adversaries)}, reconstruction "
                     f"{f.reconstruction or 'none'}, {f.epochs} epochs; baselines: "
                     f"{baselines or 'none'}. Trials are placed by `action_acc_fresh` (max) "
                     f"and `privacy_acc_worst` (min); `pareto_rank` 1 is the front.")  # fmt: skip
    else:
        lines.append("Farm off: trials are placed by the in-loop `action_acc` and `privacy_acc`.")
    return "\n\n".join(lines)


def candidates(tracker: Tracker, experiment_id: str, study_run: str, study: Study,
               data: StudyData | None = None) -> list[Candidate]:  # fmt: skip
    """What the farm attacks: the finished trials that logged their encoder (all, or the
    in-loop front, as ``farm.candidates`` says), each farmed from its run's encoder artifact,
    and the study's baselines, each with its MLflow run (a baseline's run is created once, under
    the study run, and found again on resume), named by encoder and parameters. With ``data``,
    each baseline's run gets the same sample picture as the trials."""
    trials = [r for r in tracker.find_runs(experiment_id, "trial", study_run)
              if r.info.status == "FINISHED" and ENCODER_SAVED in r.data.tags]  # fmt: skip
    if study.farm.candidates == "pareto" and trials:
        points = [(r.data.metrics.get("action_acc", math.nan),
                   r.data.metrics.get("privacy_acc", math.nan)) for r in trials]  # fmt: skip
        trials = [r for r, on in zip(trials, pareto.non_dominated(points), strict=True) if on]
    out = [Candidate(r.data.tags[TRIAL], r.info.run_id, encoder_run=r.info.run_id)
           for r in trials]  # fmt: skip
    baselines = study.farm.baselines
    labels = distinct(baseline_run_name(b.name, b.params) for b in baselines)
    for b, label in zip(baselines, labels, strict=True):
        run_id = tracker.baseline_run(experiment_id, study_run, label, b.name, b.params)
        if data is not None:
            _baseline_samples(tracker, run_id, data, b, label, study.tracking.sample_frames)
        out.append(Candidate(label, run_id, encoder=b))
    return out


def _baseline_samples(tracker: Tracker, run_id: str, data: StudyData, b: EncoderConfig,
                      label: str, n: int) -> None:  # fmt: skip
    """The baseline's picture, as its trials' (:func:`privar.search.trial.log_samples`)."""
    from privar.encoders import create_encoder
    from privar.search.trial import log_samples

    log_samples(tracker, run_id, data, create_encoder(b.name, **b.params), n, f"encoder: {label}")


def _print_trials(outcomes, say: Callable[[str], None]) -> None:
    """The search's trials by in-loop action accuracy; a failed one with its error."""
    say(f"  {'trial':<12}{'action_acc':>11}{'privacy_acc':>13}  params")
    for o in sorted(outcomes, key=lambda o: -o.metrics.get("action_acc", 0)):
        params = " ".join(f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else
                          f"{k.rsplit('.', 1)[-1]}={v}"
                          for k, v in o.metrics.get("config", {}).items())  # fmt: skip
        state = f"FAILED: {o.error}" if o.error else ("" if o.complete else "(stopped early)")
        say(f"  {o.trial_id:<12}{o.metrics.get('action_acc', float('nan')):>11.3f}"
            f"{o.metrics.get('privacy_acc', float('nan')):>13.3f}  "
            f"{' '.join(filter(None, (params, state)))}")  # fmt: skip
