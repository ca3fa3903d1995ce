"""``privar run`` and ``privar resume``: a study from its file to a farm-checked Pareto front.

Top to bottom: check the study file and the tracking store (fast failures first), start or join
Ray, prepare the data once (generate the synthetic set if missing, probe, decode into the clip
cache), open the study's MLflow run, search, farm the candidates, and print the front.

Every ``privar run`` is a new study run in the study's MLflow experiment, with its own search
folder ``out_dir/<name>/<study run id>/`` on the driver; ``privar resume`` picks the newest study
run that did not finish and continues its search and farm where they stopped. The study file and
the resolved study are artifacts of the study run, trained encoders artifacts of their trial
runs: ``privar farm`` reads both back from MLflow, never from a path another machine wrote.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import yaml

from privar import pareto
from privar.cluster import capacity, connect
from privar.data.pipeline import open_study_data
from privar.data.stream import StudyData
from privar.errors import UserError
from privar.farm.run import FARM_KEYS, Candidate, Farm, job_bundle
from privar.front import select_front
from privar.resources import check_group
from privar.study import Study, load_study, with_overrides
from privar.tracking import Tracker, resolve_uri
from privar.tracking.runs import CHECKPOINT, ENCODER, ENCODER_SAVED, FOLDER, PARENT, STUDY, TRIAL
from privar.train.common import eval_split

RESOLVED = "study/resolved"  # the study run's artifact folder of the resolved study.yaml


def _say(msg: str) -> None:
    print(msg, flush=True)


def load_checked(path: str, overrides: dict | None = None) -> Study:
    """The study file with ``--set`` overrides, checked like ``privar validate`` does."""
    from privar.validate import check_study

    study = load_study(path)
    if overrides:
        study = with_overrides(study, overrides)
    check_study(study, path)
    return study


def _open_study_run(tracker: Tracker, study: Study, path: str,
                    resume: bool) -> tuple[str, str, Path]:  # fmt: skip
    """(experiment id, study run id, search folder): a new study run, or the newest
    unfinished one to resume."""
    experiment_id = tracker.experiment(study.name)
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


def run_study(path: str, address: str | None = None, tracking_uri: str | None = None,
              overrides: dict | None = None, resume: bool = False,
              say: Callable[[str], None] = _say) -> int:  # fmt: skip
    from privar.search.trial import SearchContext
    from privar.search.tuner import has_search_state, plan_trials, run_search

    t0 = time.monotonic()
    study = load_checked(path, overrides)
    tracker = Tracker(resolve_uri(tracking_uri or study.tracking.uri))
    resources = connect(address)  # a wrong address fails in seconds, before any data work
    say(f"study {study.name}: scheme {study.scheme}, encoder {study.encoder.name}, "
        f"{study.search.num_trials} trials ({study.search.sampler}), "
        f"Ray {resources.get('CPU', 0):g} CPUs{f' at {address}' if address else ' (local)'}, "
        f"MLflow {tracker.uri}")  # fmt: skip

    cap = capacity()
    plan_trials(study, cap)  # a trial no node can hold fails now, not after hours of waiting
    data = open_study_data(study.data, seed=study.seed)
    if study.farm.enabled:  # so does a farm job, before the search spends anything
        cached = data.cache_root is not None and data.cache_fits
        check_group([job_bundle(study.farm, 0 if cached else 1)], cap, FARM_KEYS,
                    "each farm job")  # fmt: skip
    data.prepare()
    say(f"  data: {len(data.records)} videos, {len(data.quarantined)} quarantined, "
        f"ready in {time.monotonic() - t0:.0f} s")  # fmt: skip
    for q in data.quarantined:
        say(f"  quarantined: {q.path}: {q.reason}")

    experiment_id, study_run, folder = _open_study_run(tracker, study, path, resume)
    tracker.log_metrics(study_run, chance_levels(data))
    say(f"  MLflow experiment {study.name} ({experiment_id}), study run {study_run}")
    ctx = SearchContext(tracker, experiment_id, study_run, folder)
    try:
        outcomes = run_search(study, data, ctx, say=say,
                              resume=resume and has_search_state(study, ctx))
        tracker.log_metrics(study_run, {"quarantined": len(data.quarantined),
                                        "trials": len(outcomes)})  # fmt: skip
        say(f"  search done: {len(outcomes)} trials in {time.monotonic() - t0:.0f} s")
        _print_trials(outcomes, say)
        for o in outcomes:  # Tune ends a stopped trial's process: close its run here
            if o.run_id and not o.complete and not o.error:
                tracker.prune(o.run_id)
        failed = [o for o in outcomes if o.error]
        if failed and len(failed) == len(outcomes):
            tracker.finish(study_run, "FAILED")
            say(f"privar: every trial failed; the first: {failed[0].error}")
            return 1
        if study.farm.enabled:
            farm = Farm(study, data, tracker, experiment_id, say)
            farm.attack(candidates(tracker, experiment_id, study_run, study))
            say(f"  farm done in {time.monotonic() - t0:.0f} s")
        select_front(tracker, experiment_id, study_run, study.name, folder, clip_shape(study),
                     say)  # fmt: skip
    except KeyboardInterrupt:
        tracker.finish(study_run, "KILLED")
        say(f"interrupted: `privar resume {path}` finishes the study")
        raise
    tracker.finish(study_run)
    say(f"done in {time.monotonic() - t0:.0f} s; MLflow: {tracker.uri}")
    return 0


def clip_shape(study: Study) -> tuple[int, int, int]:
    """(T, H, W) of the clips the study's encoders see."""
    return (max(study.data.segments, 1) * study.data.clip_len, *study.data.size)


def chance_levels(data: StudyData) -> dict[str, float]:
    """The majority class's share of the validation split, for actions and privacy labels."""
    split = eval_split(data)
    records = [data.records[i] for i in data.usable(split)]
    return {f"{key}_chance": max(Counter(getattr(r, key) for r in records).values()) /
            len(records) for key in ("action", "privacy")}  # fmt: skip


def candidates(tracker: Tracker, experiment_id: str, study_run: str,
               study: Study) -> list[Candidate]:  # fmt: skip
    """What the farm attacks: the finished trials that logged their encoder (all, or the
    in-loop front, as ``farm.candidates`` says), each farmed from its run's encoder artifact,
    and the study's baselines, each with its MLflow run (a baseline's run is created once, under
    the study run, and found again on resume)."""
    trials = [r for r in tracker.find_runs(experiment_id, "trial", study_run)
              if r.info.status == "FINISHED" and ENCODER_SAVED in r.data.tags]  # fmt: skip
    if study.farm.candidates == "pareto" and trials:
        points = [(r.data.metrics.get("action_acc", math.nan),
                   r.data.metrics.get("privacy_acc", math.nan)) for r in trials]  # fmt: skip
        trials = [r for r, on in zip(trials, pareto.non_dominated(points), strict=True) if on]
    out = [Candidate(r.data.tags[TRIAL], r.info.run_id, encoder_run=r.info.run_id)
           for r in trials]  # fmt: skip
    for b in study.farm.baselines:
        label = b.name + "".join(f" {k}={v}" for k, v in sorted(b.params.items()))
        run_id = tracker.baseline_run(experiment_id, study_run, label, b.name, b.params)
        out.append(Candidate(label, run_id, encoder=b))
    return out


def _print_trials(outcomes, say: Callable[[str], None]) -> None:
    """The search's trials by in-loop action accuracy; a failed one with its error."""
    say(f"  {'trial':<12}{'action_acc':>11}{'privacy_acc':>13}  params")
    for o in sorted(outcomes, key=lambda o: -o.metrics.get("action_acc", 0)):
        params = " ".join(f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else
                          f"{k.rsplit('.', 1)[-1]}={v}"
                          for k, v in o.metrics.get("config", {}).items())  # fmt: skip
        state = f"FAILED: {o.error}" if o.error else ("" if o.complete else "(stopped early)")
        say(f"  {o.trial_id:<12}{o.metrics.get('action_acc', float('nan')):>11.3f}"
            f"{o.metrics.get('privacy_acc', float('nan')):>13.3f}  {params} {state}")  # fmt: skip


def _study_run(tracker: Tracker, name: str, path: str) -> tuple[str, str, Path]:
    """(experiment id, newest study run id, its folder) of study ``name``."""
    runs = tracker.study_runs(name)
    if not runs:
        raise UserError(f"{path}: no run of study {name!r} in {tracker.uri}")
    return runs[0].info.experiment_id, runs[0].info.run_id, Path(runs[0].data.tags[FOLDER])


def pareto_study(path: str, tracking_uri: str | None = None, out: str | None = None,
                 say: Callable[[str], None] = _say) -> int:  # fmt: skip
    """``privar pareto``: the newest run of the study, its front from MLflow."""
    study = load_checked(path)
    tracker = Tracker(resolve_uri(tracking_uri or study.tracking.uri))
    exp, study_run, folder = _study_run(tracker, study.name, path)
    select_front(tracker, exp, study_run, study.name, Path(out) if out else folder,
                 clip_shape(study), say)  # fmt: skip
    return 0


def farm_one(run_id: str | None, checkpoint: str | None, study_path: str | None,
             address: str | None = None, tracking_uri: str | None = None,
             say: Callable[[str], None] = _say) -> int:  # fmt: skip
    """``privar farm``: attack one encoder on demand: a finished trial's (``run_id``; its study
    is the one that ran it, read back from its study run's resolved-study artifact), or a file
    on this machine (``checkpoint``, an encoder file or a training checkpoint, with
    ``study_path``), first logged as the encoder artifact of a new ``checkpoint`` run. Either
    way the farm's jobs download the encoder from MLflow, on whatever node they run."""
    from privar.encoders.artifact import ENCODER_FILE, log_encoder, to_encoder_file

    if study_path:
        study = load_checked(study_path)
        tracker = Tracker(resolve_uri(tracking_uri or study.tracking.uri))
    else:
        tracker = Tracker(resolve_uri(tracking_uri))
    if run_id:
        try:
            run = tracker.client.get_run(run_id)
        except Exception:
            raise UserError(f"--run {run_id}: no such run in {tracker.uri}") from None
        if ENCODER_SAVED not in run.data.tags:
            raise UserError(f"--run {run_id}: not a finished trial (it logged no encoder)")
        if not study_path:
            study = _resolved_study(tracker, run.data.tags[PARENT])
        candidate = Candidate(run.data.tags.get(TRIAL, run_id), run_id, encoder_run=run_id)
        experiment_id = run.info.experiment_id
    else:
        name = Path(checkpoint).name
        with tempfile.TemporaryDirectory(prefix="privar-encoder-") as tmp:
            file = to_encoder_file(checkpoint, Path(tmp) / ENCODER_FILE, study.encoder.name,
                                   study.encoder.params)  # fmt: skip
            experiment_id = tracker.experiment(study.name)
            run_id = tracker.create_run(experiment_id, "checkpoint", name,
                                        tags={ENCODER: study.encoder.name,
                                              CHECKPOINT: name})  # fmt: skip
            log_encoder(tracker, run_id, file)
        candidate = Candidate(name, run_id, encoder_run=run_id)
    connect(address)
    data = open_study_data(study.data, seed=study.seed)
    data.prepare()
    result = Farm(study, data, tracker, experiment_id, say).attack([candidate])[0]
    if checkpoint:
        tracker.finish(run_id)
    say("  ".join(f"{k} {v:.3f}" for k, v in sorted(result.metrics.items())))
    return 0


def _resolved_study(tracker: Tracker, study_run: str) -> Study:
    """The study as study run ``study_run`` ran it: its resolved ``study.yaml`` artifact."""
    with tempfile.TemporaryDirectory(prefix="privar-study-") as tmp:
        try:
            path = tracker.download(study_run, f"{RESOLVED}/study.yaml", tmp)
        except Exception as e:
            raise UserError(f"study run {study_run}: no {RESOLVED}/study.yaml artifact in "
                            f"{tracker.uri} ({type(e).__name__})") from None  # fmt: skip
        return load_checked(str(path))
