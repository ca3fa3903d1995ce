"""What the recipes share: the study file loaded with its checks, and the study turned into the
small frozen specs the layers below take (a training run's, the farm's).

Every model's keyword arguments are resolved here, through its registry
(:meth:`privar.registry.Registry.arguments`: what the entry derives from the data section, such as
STAT's segments or ViT's image size, then the study's ``params``); nothing below reads a study.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from privar.farm.spec import FarmSpec
from privar.study import EncoderConfig, Study, with_overrides
from privar.train.spec import ModelSpec, TrainSpec

if TYPE_CHECKING:
    from privar.data.dataset import StudyData

RESOLVED = "study/resolved"  # the study run's artifact folder of the resolved study.yaml


def echo(msg: str) -> None:
    """A progress line on stdout, at once."""
    print(msg, flush=True)


def load_checked(path: str, overrides: dict | None = None) -> Study:
    """The study file with ``--set`` overrides, checked as ``privar validate`` checks it (the
    first problem is the same line)."""
    from privar.validate import validate_file

    return validate_file(path, overrides)


def clip_shape(study: Study) -> tuple[int, int, int]:
    """(T, H, W) of the clips the study's encoders see."""
    return (max(study.data.segments, 1) * study.data.clip_len, *study.data.size)


def label_counts(data: StudyData) -> tuple[int, int]:
    """(actions, privacy labels) in the study's videos: the models' class counts."""
    from privar.data.manifest import label_index

    return len(label_index(data.records, "action")), len(label_index(data.records, "privacy"))


def encoder_config(study: Study) -> EncoderConfig:
    """The study's encoder with its parameters resolved through the registry: what a trained
    encoder is saved with, and rebuilt from."""
    from privar.encoders.base import ENCODERS

    enc = study.encoder
    return EncoderConfig(enc.name, ENCODERS.arguments(enc.name, study.data, enc.params))


def train_spec(study: Study, labels: tuple[int, int], overrides: Mapping[str, Any] | None = None,
               where: str = "--set") -> TrainSpec:  # fmt: skip
    """The training run of ``study``, with dotted ``overrides`` applied first (a trial's sampled
    values, checked like a study file; a bad one names ``where``). ``labels``: what
    :func:`label_counts` says of the data. Picklable with ``functools.partial``: a search binds
    ``study`` and ``labels`` and each trial passes its own overrides."""
    from privar.models import ACTION_MODELS, PRIVACY_MODELS

    if overrides:
        study = with_overrides(study, dict(overrides), where=where)
    act, priv = study.action_model, study.privacy_model
    return TrainSpec(
        scheme=study.scheme,
        encoder=encoder_config(study),
        action=ModelSpec(act.name, ACTION_MODELS.arguments(act.name, study.data, act.params),
                         act.pretrained),
        privacy=ModelSpec(priv.name, PRIVACY_MODELS.arguments(priv.name, study.data,
                                                              priv.params), priv.pretrained),
        num_actions=labels[0],
        num_privacy=labels[1],
        train=study.train,
        section=getattr(study, study.scheme),  # each scheme's section is named after it
        seed=study.seed,
    )  # fmt: skip


def farm_spec(study: Study) -> FarmSpec:
    """The farm of ``study``: its adversaries (from ``farm.pretrained`` weights when set), its
    reconstruction model and its fresh action model (``farm.action_model``, else the study's
    action model, from scratch), trained with the study's optimisation and seed."""
    from privar.models import ACTION_MODELS, PRIVACY_MODELS, RECON_MODELS

    f, data = study.farm, study.data
    action = f.action_model or study.action_model.name
    recon = f.reconstruction
    return FarmSpec(
        adversaries=tuple(ModelSpec(a, PRIVACY_MODELS.arguments(a, data), f.pretrained)
                          for a in f.adversaries),
        action=ModelSpec(action, ACTION_MODELS.arguments(action, data)),
        reconstruction=ModelSpec(recon, RECON_MODELS.arguments(recon, data)) if recon else None,
        epochs=f.epochs,
        recon_epochs=f.recon_epochs,
        train=study.train,
        seed=study.seed,
        cpus_per_job=f.cpus_per_job,
        gpus_per_job=f.gpus_per_job,
        memory_gb_per_job=f.memory_gb_per_job,
        retries=f.retries,
        racing=f.racing,
        racing_eta=f.racing_eta,
        racing_min_epochs=f.racing_min_epochs,
    )  # fmt: skip
