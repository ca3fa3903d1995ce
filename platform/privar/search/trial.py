"""One search trial, as Ray Tune runs it: train one candidate encoder and log it.

The trial turns its sampled hyper-parameters into its training run (the search spec's
``make_trial``, which the recipe bound to the study: the values are checked like a study file),
trains it with its scheme (:data:`privar.train.schemes.SCHEMES`), and reports every epoch both
to Tune (which tells the searcher and the early-stopping scheduler) and to the trial's MLflow
run. It ends by logging to that run a picture of what the encoder shows and the encoder itself,
as the artifact ``encoder/encoder.pt`` (the format is :mod:`privar.encoders.artifact`'s) with the
tag ``privar.encoder_artifact``: the farm and the registry, on whatever node they run, download
it from there. No path on this node's disk is recorded. The trial never reads the study.

A trial is resumable: its training checkpoints travel with its reports to Tune, which keeps the
last one in the search's storage (shared, or an object store on a cluster), and its MLflow run is
found again by its ``privar.trial`` tag, so a resumed study continues both, on any node.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from privar.data.dataset import StudyData, eval_split
from privar.encoders.artifact import ENCODER_FILE, log_encoder, save_encoder
from privar.search.space import decode
from privar.search.spec import SearchSpec
from privar.tracking import Tracker
from privar.tracking.images import sample_grid
from privar.tracking.runs import NODE
from privar.train.common import pick_device, to_input
from privar.train.schemes import SCHEMES, build_encoder


@dataclass(frozen=True)
class SearchContext:
    """Where a search's trials log and save: the MLflow ``tracker``, the study's
    ``experiment_id`` and ``study_run``, and the search ``folder`` on (shared) disk."""

    tracker: Tracker
    experiment_id: str
    study_run: str
    folder: Path


@torch.no_grad()
def encoded_samples(data: StudyData, encoder: torch.nn.Module, n: int) -> np.ndarray | None:
    """Raw over encoded middle frames of the first ``n`` validation clips, as one image."""
    if n < 1:
        return None
    device = next(encoder.parameters(), torch.empty(0)).device
    batch = next(iter(data.stream(eval_split(data), train=False, batch_size=n)), None)
    if batch is None:
        return None
    x = to_input(batch.clip, device)
    return sample_grid(x.cpu(), encoder.eval()(x).float().cpu())


def train_trial(config: dict[str, Any], *, search: SearchSpec, data: StudyData,
                ctx: SearchContext) -> None:  # fmt: skip
    """Ray Tune's function trainable for one sampled ``config``."""
    # Ray Train says "Checkpoint successfully created" at every epoch; privar's own progress
    # lines say what happens.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    trial_id = tune.get_context().get_trial_id()
    overrides = decode(config, search.search.space)
    spec = search.make_trial(overrides, f"trial {trial_id}")
    tracker = ctx.tracker
    run_id = tracker.trial_run(ctx.experiment_id, ctx.study_run, trial_id, overrides,
                               spec.encoder.name)  # fmt: skip
    tracker.set_tags(run_id, {NODE: ray.get_runtime_context().get_node_id()})
    data.ensure_cache()  # this node's copy of the clip cache, decoded here if it has none
    # Training checkpoints go to this node's disk, and with every epoch's report to Tune, which
    # keeps them in the search's storage: a trial resumed on another node starts from there.
    folder = Path(tempfile.mkdtemp(prefix=f"privar-{trial_id}-"))
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
    image = encoded_samples(data, encoder, search.sample_frames)
    if image is not None:
        tracker.log_image(run_id, image, "samples/encoded.png")
    log_encoder(tracker, run_id, path)  # last: the tag says the trial's encoder is in MLflow
    tracker.finish(run_id)
    shutil.rmtree(folder, ignore_errors=True)
