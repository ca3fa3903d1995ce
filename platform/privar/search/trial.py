"""One search trial, as Ray Tune runs it: train one candidate encoder and log it.

The trial turns its sampled hyper-parameters into its training run (the search spec's
``make_trial``, which the recipe bound to the study: the values are checked like a study file),
trains it with its scheme (:data:`privar.train.schemes.SCHEMES`), and reports every epoch both
to Tune (which tells the searcher and the early-stopping scheduler) and to the trial's MLflow
run. The run is named for a reader, by the trial's number and sampled values (``t3 alpha=1.11
levels=4``), and holds every setting of its training run as a dotted param (:func:`trial_params`).
It ends by logging to that run a picture of what the encoder shows (:func:`log_samples`: the
same clips for every trial and baseline, at the same artifact path) and the encoder itself, as
the artifact ``encoder/encoder.pt`` (the format is :mod:`privar.encoders.artifact`'s) with the
tag ``privar.encoder_artifact``: the farm and the registry, on whatever node they run, download
it from there. No path on this node's disk is recorded. The trial never reads the study.

A trial is resumable: its training checkpoints travel with its reports to Tune, which keeps the
last one in the search's storage (shared, or an object store on a cluster), and its MLflow run is
found again by its ``privar.trial`` tag, so a resumed study continues both, on any node.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from privar.data.dataset import StudyData, eval_split
from privar.data.stream import ClipStream
from privar.encoders.artifact import ENCODER_FILE, log_encoder, save_encoder
from privar.search.scratch import make_folder
from privar.search.space import decode
from privar.search.spec import SearchSpec
from privar.tracking import Tracker
from privar.tracking.images import SAMPLES, sample_grid
from privar.tracking.names import flatten, short_params, trial_run_name
from privar.tracking.runs import NODE
from privar.train.common import pick_device, to_input
from privar.train.schemes import SCHEMES, build_encoder
from privar.train.spec import TrainSpec


@dataclass(frozen=True)
class SearchContext:
    """Where a search's trials log and save: the MLflow ``tracker``, the study's
    ``experiment_id`` and ``study_run``, and the search ``folder`` on (shared) disk."""

    tracker: Tracker
    experiment_id: str
    study_run: str
    folder: Path


def trial_number(trial_dir: str, trial_id: str) -> int | None:
    """The trial's number in its search, 1 for the first: Tune names a searched trial's folder
    ``<trainable>_<trial id>_<number>_<values>_<date>`` (its experiment tag); None when the
    folder does not say."""
    found = re.search(rf"_{re.escape(trial_id)}_(\d+)(?:_|$)", Path(trial_dir).name)
    return int(found.group(1)) if found else None


def trial_params(spec: TrainSpec, data: StudyData, sampled: dict[str, Any]) -> dict[str, Any]:
    """Every setting that shapes a trial, by its dotted study key: the scheme and its section
    (``adversarial.alpha``), the encoder with its resolved parameters (``encoder.params.levels``),
    both models (``action_model.name``, ``privacy_model.params.*``), the optimisation
    (``train.lr``), the seed, the clips (``data.clip_len``) and the label counts; the
    ``sampled`` values override the same keys (exactly as the sampler drew them)."""
    models = {}
    for key, m in (("action_model", spec.action), ("privacy_model", spec.privacy)):
        models[key] = {"name": m.name, "pretrained": m.pretrained, "params": m.kwargs}
    settings = {
        "scheme": spec.scheme,
        "seed": spec.seed,
        "encoder": spec.encoder,
        **models,
        "train": spec.train,
        spec.scheme: spec.section,
        "data": {**flatten(data.spec), "decoder": data.decoder},
        "num_actions": spec.num_actions,
        "num_privacy": spec.num_privacy,
    }
    return {**flatten(settings), **sampled}


def sample_clips(data: StudyData, n: int) -> torch.Tensor | None:
    """The clips every run's picture shows: float (n, C, T, H, W) in [0, 1] on the CPU, the
    centre clips of the first ``n`` usable evaluation videos in manifest order, the same in
    every trial and baseline of a study; None for ``n < 1`` or no such video."""
    ids = data.usable(eval_split(data))[: max(n, 0)]
    if not ids:
        return None
    stream = ClipStream(data, ids, train=False, epoch=0, batch_size=len(ids),
                        tasks_batch=len(ids))  # fmt: skip
    batches = list(stream)
    if not batches:
        return None
    clips = torch.cat([b.clip for b in batches])
    order = torch.argsort(torch.cat([b.video for b in batches]))  # whatever order they came in
    return to_input(clips[order], torch.device("cpu"))


@torch.no_grad()
def log_samples(tracker: Tracker, run_id: str, data: StudyData, encoder: torch.nn.Module,
                n: int, caption: str) -> bool:  # fmt: skip
    """Log to run ``run_id`` the picture of :func:`sample_clips` raw over ``encoder``'s output,
    captioned ``caption`` (``encoder: bdq alpha=1.11 levels=4``), at the artifact path
    :data:`~privar.tracking.images.SAMPLES`; False when there is nothing to show."""
    x = sample_clips(data, n)
    if x is None:
        return False
    device = next(encoder.parameters(), torch.empty(0)).device
    z = encoder.eval()(x.to(device)).float().cpu()
    tracker.log_image(run_id, sample_grid(x, z, caption=caption), SAMPLES)
    return True


def train_trial(config: dict[str, Any], *, search: SearchSpec, data: StudyData,
                ctx: SearchContext) -> None:  # fmt: skip
    """Ray Tune's function trainable for one sampled ``config``."""
    # Ray Train says "Checkpoint successfully created" at every epoch; privar's own progress
    # lines say what happens.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    context = tune.get_context()
    trial_id = context.get_trial_id()
    overrides = decode(config, search.search.space)
    spec = search.make_trial(overrides, f"trial {trial_id}")
    tracker = ctx.tracker
    number = trial_number(context.get_trial_dir(), trial_id)
    if number is None:  # the trial's order among the study's runs, as a last resort
        number = len(tracker.find_runs(ctx.experiment_id, "trial", ctx.study_run)) + 1
    run_id = tracker.trial_run(ctx.experiment_id, ctx.study_run, trial_id,
                               trial_run_name(number, overrides),
                               trial_params(spec, data, overrides), spec.encoder.name,
                               tuple(overrides))  # fmt: skip
    tracker.set_tags(run_id, {NODE: ray.get_runtime_context().get_node_id()})
    data.ensure_cache()  # this node's copy of the clip cache, decoded here if it has none
    # Training checkpoints go to this node's disk, and with every epoch's report to Tune, which
    # keeps them in the search's storage: a trial resumed on another node starts from there. The
    # folder is named for this process, so a later trial removes it if this one is SIGKILLed.
    folder = make_folder(trial_id)
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as saved:
            shutil.copytree(saved, folder, dirs_exist_ok=True)
    epochs, reported = spec.train.epochs, []

    def report(epoch: int, metrics: dict[str, float]) -> None:
        tracker.log_metrics(run_id, metrics, step=epoch)
        tune.report({**metrics, "epoch": epoch + 1, "epochs": epochs, "run_id": run_id},
                    checkpoint=tune.Checkpoint.from_directory(folder))  # fmt: skip
        reported.append(epoch)

    torch.manual_seed(spec.seed)
    encoder = build_encoder(spec.encoder)
    try:
        metrics = SCHEMES.create(spec.scheme, spec=spec, data=data, encoder=encoder,
                                 device=pick_device(), checkpoint_dir=folder,
                                 report=report)  # fmt: skip
    except BaseException:
        tracker.finish(run_id, "FAILED")
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if not reported:  # resumed after its last epoch: the checkpoint kept the final metrics
        report(epochs - 1, metrics)
    path = save_encoder(encoder, spec.encoder.name, spec.encoder.params,
                        folder / ENCODER_FILE)  # fmt: skip
    caption = " ".join(s for s in (f"encoder: {spec.encoder.name}", short_params(overrides)) if s)
    log_samples(tracker, run_id, data, encoder, search.sample_frames, caption)
    log_encoder(tracker, run_id, path)  # last: the tag says the trial's encoder is in MLflow
    tracker.finish(run_id)
    shutil.rmtree(folder, ignore_errors=True)
