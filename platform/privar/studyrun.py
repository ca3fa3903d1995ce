"""``privar run`` and ``privar resume``: a study from its file to a farm-checked Pareto front.

Top to bottom: check the study file and the tracking store (fast failures first), start or join
Ray, prepare the data once (generate the synthetic set if missing, probe, decode into the clip
cache), open the study's MLflow run, search, farm the candidates, and print the front.

Every ``privar run`` is a new study run in the study's MLflow experiment, with its own search
folder ``out_dir/<name>/<study run id>/``; ``privar resume`` picks the newest study run that did
not finish and continues its search and farm where they stopped.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import yaml

from privar import pareto
from privar.cluster import connect
from privar.data.pipeline import open_study_data
from privar.data.stream import StudyData
from privar.errors import UserError
from privar.farm.run import Candidate, Farm
from privar.study import Study, load_study, with_overrides
from privar.tracking import Tracker, resolve_uri
from privar.tracking.front import select_front
from privar.tracking.runs import BASELINE, ENCODER, TRIAL
from privar.train.common import eval_split

FOLDER_TAG = "privar.folder"


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
        for run in tracker.find_runs(experiment_id, "study"):
            if run.info.status != "FINISHED" and FOLDER_TAG in run.data.tags:
                tracker.client.update_run(run.info.run_id, status="RUNNING")
                return experiment_id, run.info.run_id, Path(run.data.tags[FOLDER_TAG])
        raise UserError(f"{path}: no unfinished run of study {study.name!r} in {tracker.uri}")
    run_id = tracker.create_run(experiment_id, "study", study.name,
                                tags={"privar.study": study.name})  # fmt: skip
    folder = (Path(study.out_dir) / study.name / run_id).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    resolved = folder / "study.yaml"
    resolved.write_text(yaml.safe_dump(_plain(asdict(study)), sort_keys=False))
    tracker.set_tags(run_id, {FOLDER_TAG: str(folder)})
    tracker.log_artifact(run_id, path, "study")
    tracker.log_artifact(run_id, resolved, "study/resolved")
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
    from privar.search.tuner import has_search_state, run_search

    t0 = time.monotonic()
    study = load_checked(path, overrides)
    tracker = Tracker(resolve_uri(tracking_uri or study.tracking.uri))
    resources = connect(address)  # a wrong address fails in seconds, before any data work
    say(f"study {study.name}: scheme {study.scheme}, encoder {study.encoder.name}, "
        f"{study.search.num_trials} trials ({study.search.sampler}), "
        f"Ray {resources.get('CPU', 0):g} CPUs{f' at {address}' if address else ' (local)'}, "
        f"MLflow {tracker.uri}")  # fmt: skip

    data = open_study_data(study.data, seed=study.seed)
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
        outcomes = run_search(study, data, ctx, resume=resume and has_search_state(folder))
        tracker.log_metrics(study_run, {"quarantined": len(data.quarantined),
                                        "trials": len(outcomes)})  # fmt: skip
        say(f"  search done: {len(outcomes)} trials in {time.monotonic() - t0:.0f} s")
        _print_trials(outcomes, say)
        for o in outcomes:  # Tune ends a stopped trial's process: close its run here
            if o.run_id and not o.complete and not o.error:
                tracker.set_tags(o.run_id, {"privar.pruned": "true"})
                tracker.finish(o.run_id, "KILLED")
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
    """What the farm attacks: the finished trials (all, or the in-loop front, as
    ``farm.candidates`` says) and the study's baselines, each with its MLflow run (a baseline's
    run is created once, under the study run, and found again on resume)."""
    trials = [r for r in tracker.find_runs(experiment_id, "trial", study_run)
              if r.info.status == "FINISHED" and "privar.encoder_file" in r.data.tags]  # fmt: skip
    if study.farm.candidates == "pareto" and trials:
        points = [(r.data.metrics.get("action_acc", math.nan),
                   r.data.metrics.get("privacy_acc", math.nan)) for r in trials]  # fmt: skip
        trials = [r for r, on in zip(trials, pareto.non_dominated(points), strict=True) if on]
    out = [Candidate(r.data.tags[TRIAL], r.info.run_id, r.data.tags["privar.encoder_file"])
           for r in trials]  # fmt: skip
    for b in study.farm.baselines:
        label = b.name + "".join(f" {k}={v}" for k, v in sorted(b.params.items()))
        found = tracker.find_runs(experiment_id, "baseline", study_run, {BASELINE: label})
        if found:
            run_id = found[0].info.run_id
        else:
            run_id = tracker.create_run(experiment_id, "baseline", label, study_run,
                                        {ENCODER: b.name, BASELINE: label})  # fmt: skip
            tracker.log_params(run_id, {f"encoder.params.{k}": v for k, v in b.params.items()})
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
    exp = tracker.client.get_experiment_by_name(name)
    runs = tracker.find_runs(exp.experiment_id, "study") if exp else []
    runs = [r for r in runs if FOLDER_TAG in r.data.tags]
    if not runs:
        raise UserError(f"{path}: no run of study {name!r} in {tracker.uri}")
    return exp.experiment_id, runs[0].info.run_id, Path(runs[0].data.tags[FOLDER_TAG])


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
    """``privar farm``: attack one encoder on demand, a finished trial's (``run_id``; its study
    is the one that ran it) or a saved one (``checkpoint``, with ``study_path``)."""
    import torch

    from privar.search.trial import ENCODER_FILE, save_encoder
    from privar.train.runner import build_encoder

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
        if "privar.encoder_file" not in run.data.tags:
            raise UserError(f"--run {run_id}: not a finished trial (it saved no encoder)")
        if not study_path:
            parent = tracker.client.get_run(run.data.tags["mlflow.parentRunId"])
            study = load_checked(str(Path(parent.data.tags[FOLDER_TAG]) / "study.yaml"))
        candidate = Candidate(run.data.tags.get(TRIAL, run_id), run_id,
                              run.data.tags["privar.encoder_file"])  # fmt: skip
        experiment_id = run.info.experiment_id
    else:
        blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if "name" in blob:  # an encoder.pt a trial saved
            file = checkpoint
        elif "encoder" in blob:  # a training checkpoint: the study says which encoder it is
            encoder = build_encoder(study)
            encoder.load_state_dict(blob["encoder"])
            file = str(save_encoder(encoder, study, Path(checkpoint).with_name(ENCODER_FILE)))
        else:
            raise UserError(f"--checkpoint {checkpoint}: holds no encoder")
        experiment_id = tracker.experiment(study.name)
        run_id = tracker.create_run(experiment_id, "checkpoint", Path(checkpoint).name,
                                    tags={ENCODER: study.encoder.name,
                                          "privar.checkpoint": str(checkpoint)})  # fmt: skip
        candidate = Candidate(Path(checkpoint).name, run_id, file)
    connect(address)
    data = open_study_data(study.data, seed=study.seed)
    data.prepare()
    result = Farm(study, data, tracker, experiment_id, say).attack([candidate])[0]
    if checkpoint:
        tracker.finish(run_id)
    say("  ".join(f"{k} {v:.3f}" for k, v in sorted(result.metrics.items())))
    return 0
