"""One training run from a study file, without search: what ``privar train`` does.

Builds the data stream, the encoder and the models the study names, and hands them to the
study's scheme. Everything it builds comes from the registries; constructors get the values
they need, never the study.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch.nn as nn

from privar.data.manifest import label_index
from privar.data.pipeline import open_study_data
from privar.data.stream import StudyData
from privar.encoders import create_encoder
from privar.models import create_action_model, create_privacy_model
from privar.study import ModelConfig, Study
from privar.train.adversarial import train_adversarial
from privar.train.attention import train_attention
from privar.train.common import Report, pick_device
from privar.train.distill import train_distill


def model_factory(kind: str, cfg: ModelConfig, num_classes: int,
                  **extra) -> Callable[[], nn.Module]:  # fmt: skip
    create = create_action_model if kind == "action" else create_privacy_model
    return lambda: create(cfg.name, num_classes=num_classes, pretrained=cfg.pretrained,
                          **{**extra, **cfg.params})  # fmt: skip


def build_encoder(study: Study) -> nn.Module:
    return create_encoder(study.encoder.name, **study.encoder.params)


def run_scheme(
    study: Study,
    data: StudyData,
    device: str | None = None,
    checkpoint_dir: str | Path | None = None,
    report: Report | None = None,
    encoder: nn.Module | None = None,
) -> dict[str, float]:
    """Train the study's scheme once on ``data`` (prepared). Returns the last epoch's metrics.
    ``encoder`` (default: built from the study) is trained in place, so a caller that passes
    one holds the trained encoder afterwards."""
    dev = pick_device(device)
    num_actions = len(label_index(data.records, "action"))
    num_privacy = len(label_index(data.records, "privacy"))
    # STAT's models cut the clip into the K segments of clip_len frames the data layer sampled.
    extra = {}
    if study.scheme == "attention":
        extra = {"num_segments": study.data.segments, "frames_per_segment": study.data.clip_len}
    action = model_factory("action", study.action_model, num_actions, **extra)
    privacy = model_factory("privacy", study.privacy_model, num_privacy)
    encoder = encoder if encoder is not None else build_encoder(study)
    if study.scheme == "adversarial":
        return train_adversarial(data, encoder, action(), privacy, study.train, study.adversarial,
                                 dev, checkpoint_dir, report)  # fmt: skip
    scheme = train_distill if study.scheme == "distill" else train_attention
    section = study.distill if study.scheme == "distill" else study.attention
    return scheme(data, encoder, action(), action(), privacy, study.train, section, dev,
                  checkpoint_dir, report)  # fmt: skip


def train_study(study: Study, address: str | None = None, device: str | None = None,
                report: Report | None = None) -> dict[str, float]:  # fmt: skip
    """``privar train``: open the data, decode it once into the cache, train, checkpoint under
    ``out_dir/<name>/train`` (a second run resumes from there)."""
    from privar.cluster import connect

    data = open_study_data(study.data, seed=study.seed)
    connect(address)
    data.prepare()
    folder = Path(study.out_dir) / study.name / "train"
    return run_scheme(study, data, device, folder, report)
