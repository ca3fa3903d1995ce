"""One search trial, as Ray Tune runs it: train one candidate encoder and log it.

The trial applies its sampled hyper-parameters to the study (checked like a study file), trains
the study's scheme, and reports every epoch both to Tune (which tells the searcher and the
early-stopping scheduler) and to the trial's MLflow run. It ends by saving the encoder, which
the farm attacks later, and a picture of what the encoder shows.

A trial is resumable: its training checkpoints live in ``FOLDER/trials/<trial id>/`` and its
MLflow run is found again by its ``privar.trial`` tag, so a resumed study continues both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray import tune

from privar.data.stream import StudyData
from privar.search.space import decode
from privar.study import Study, with_overrides
from privar.tracking import Tracker
from privar.tracking.images import sample_grid
from privar.train.common import eval_split, to_input
from privar.train.runner import build_encoder, run_scheme

ENCODER_FILE = "encoder.pt"


@dataclass(frozen=True)
class SearchContext:
    """Where a search's trials log and save: the MLflow ``tracker``, the study's
    ``experiment_id`` and ``study_run``, and the search ``folder`` on (shared) disk."""

    tracker: Tracker
    experiment_id: str
    study_run: str
    folder: Path


def save_encoder(encoder: torch.nn.Module, study: Study, path: Path) -> Path:
    """The encoder as the farm and the exporter load it: registry name, parameters, weights."""
    blob = {"name": study.encoder.name, "params": dict(study.encoder.params),
            "state_dict": {k: v.cpu() for k, v in encoder.state_dict().items()}}  # fmt: skip
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def load_encoder(path: str | Path) -> torch.nn.Module:
    """The encoder :func:`save_encoder` wrote, in eval mode on the CPU."""
    from privar.encoders import create_encoder

    blob = torch.load(path, map_location="cpu", weights_only=True)
    encoder = create_encoder(blob["name"], **blob["params"])
    encoder.load_state_dict(blob["state_dict"])
    return encoder.eval()


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


def train_trial(config: dict[str, Any], *, study: Study, data: StudyData,
                ctx: SearchContext) -> None:  # fmt: skip
    """Ray Tune's function trainable for one sampled ``config``."""
    trial_id = tune.get_context().get_trial_id()
    overrides = decode(config, study.search.space)
    variant = with_overrides(study, overrides, where=f"trial {trial_id}")
    tracker = ctx.tracker
    run_id = tracker.trial_run(ctx.experiment_id, ctx.study_run, trial_id, overrides,
                               variant.encoder.name)  # fmt: skip
    folder = ctx.folder / "trials" / trial_id
    folder.mkdir(parents=True, exist_ok=True)
    epochs, reported = variant.train.epochs, []

    def report(epoch: int, metrics: dict[str, float]) -> None:
        tracker.log_metrics(run_id, metrics, step=epoch)
        tune.report({**metrics, "epoch": epoch + 1, "epochs": epochs, "run_id": run_id})
        reported.append(epoch)

    torch.manual_seed(variant.seed)
    encoder = build_encoder(variant)
    try:
        metrics = run_scheme(variant, data, None, folder, report, encoder=encoder)
    except BaseException:
        tracker.finish(run_id, "FAILED")
        raise
    if not reported:  # resumed after its last epoch: the checkpoint kept the final metrics
        report(epochs - 1, metrics)
    path = save_encoder(encoder, variant, folder / ENCODER_FILE)
    tracker.log_artifact(run_id, path, "encoder")
    image = encoded_samples(data, encoder, study.tracking.sample_frames)
    if image is not None:
        tracker.log_image(run_id, image, "samples/encoded.png")
    tracker.set_tags(run_id, {"privar.encoder_file": str(path)})
    tracker.finish(run_id)
