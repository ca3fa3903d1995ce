"""``privar farm``: attack one encoder on demand with a study's adversary farm.

Either a finished trial's encoder (``--run``; its study is the one that ran it, read back from
its study run's resolved-study artifact, unless ``--study`` names one), or a file on this
machine (``--checkpoint``, an encoder file or a training checkpoint, with ``--study``), first
logged as the encoder artifact of a new ``checkpoint`` run. Either way the farm's jobs download
the encoder from MLflow, on whatever node they run, and the results go under that run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from privar.cluster import connect
from privar.data.pipeline import open_study_data
from privar.errors import UserError
from privar.farm.run import Candidate, Farm
from privar.recipes.common import RESOLVED, echo, encoder_config, farm_spec, load_checked
from privar.study import Study
from privar.tracking import Tracker, resolve_uri
from privar.tracking.runs import CHECKPOINT, ENCODER, ENCODER_SAVED, PARENT, TRIAL


def farm_one(run_id: str | None, checkpoint: str | None, study_path: str | None,
             address: str | None = None, tracking_uri: str | None = None,
             say: Callable[[str], None] = echo) -> int:  # fmt: skip
    """``privar farm``: attack one encoder, a finished trial's (``run_id``) or a local file's
    (``checkpoint``, with ``study_path``), and print its aggregate metrics."""
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
            encoder = encoder_config(study)
            file = to_encoder_file(checkpoint, Path(tmp) / ENCODER_FILE, encoder.name,
                                   encoder.params)  # fmt: skip
            experiment_id = tracker.experiment(study.name)
            run_id = tracker.create_run(experiment_id, "checkpoint", name,
                                        tags={ENCODER: study.encoder.name,
                                              CHECKPOINT: name})  # fmt: skip
            log_encoder(tracker, run_id, file)
        candidate = Candidate(name, run_id, encoder_run=run_id)
    connect(address)
    data = open_study_data(study.data, seed=study.seed)
    data.prepare()
    data.share_quarantine()  # what the farm's jobs quarantine reaches this process
    result = Farm(farm_spec(study), data, tracker, experiment_id, say).attack([candidate])[0]
    for q in data.gather_quarantine():
        say(f"  quarantined in the farm: {q.path}: {q.reason}")
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
