"""The training schemes, one registry with one signature.

``SCHEMES.create(spec.scheme, spec=..., data=..., encoder=..., device=..., checkpoint_dir=...,
report=...)`` trains ``encoder`` in place with the scheme's loop and returns the last epoch's
metrics. Each entry builds the models its :class:`~privar.train.spec.TrainSpec` names and hands
them to its loop:

* ``adversarial``: BDQ's three players (:func:`~privar.train.adversarial.train_adversarial`);
* ``distill``: ELR's teacher -> student distillation (:func:`~privar.train.distill.train_distill`);
* ``attention``: STAT's attention transfer (:func:`~privar.train.attention.train_attention`).

Models are built in a fixed order (the student, then the teacher, then the in-loop privacy
model), so a seed gives the same weights every run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from privar.encoders import create_encoder
from privar.models import create_action_model, create_privacy_model
from privar.registry import Registry
from privar.study import EncoderConfig
from privar.train.adversarial import train_adversarial
from privar.train.attention import train_attention
from privar.train.common import Report
from privar.train.distill import train_distill
from privar.train.spec import TrainSpec

if TYPE_CHECKING:
    from privar.data.dataset import StudyData

SCHEMES: Registry[dict[str, float]] = Registry("training scheme")


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    """The encoder ``cfg`` names, with its (resolved) parameters."""
    return create_encoder(cfg.name, **cfg.params)


def action_model(spec: TrainSpec) -> nn.Module:
    """A fresh action model as ``spec`` names it (the student, or a teacher)."""
    m = spec.action
    return create_action_model(m.name, spec.num_actions, pretrained=m.pretrained, **m.kwargs)


def privacy_model(spec: TrainSpec) -> Callable[[], nn.Module]:
    """A maker of fresh in-loop privacy models (the loops build one again at every reset)."""
    m = spec.privacy
    return lambda: create_privacy_model(m.name, spec.num_privacy, pretrained=m.pretrained,
                                        **m.kwargs)  # fmt: skip


@SCHEMES.register("adversarial")
def adversarial(spec: TrainSpec, data: StudyData, encoder: nn.Module, device: torch.device,
                checkpoint_dir: str | Path | None = None,
                report: Report | None = None) -> dict[str, float]:  # fmt: skip
    """BDQ: the encoder and the action model against the in-loop privacy model."""
    return train_adversarial(data, encoder, action_model(spec), privacy_model(spec), spec.train,
                             spec.section, device, checkpoint_dir, report)  # fmt: skip


Metrics = dict[str, float]


def _teacher_student(loop: Callable[..., Metrics], doc: str) -> Callable[..., Metrics]:
    """A scheme entry for a teacher -> student ``loop``: the student and its full-resolution
    teacher are both the spec's action model."""

    def scheme(spec: TrainSpec, data: StudyData, encoder: nn.Module, device: torch.device,
               checkpoint_dir: str | Path | None = None,
               report: Report | None = None) -> dict[str, float]:  # fmt: skip
        student, teacher = action_model(spec), action_model(spec)
        return loop(data, encoder, student, teacher, privacy_model(spec), spec.train,
                    spec.section, device, checkpoint_dir, report)  # fmt: skip

    scheme.__doc__ = doc
    return scheme


SCHEMES.register("distill")(_teacher_student(
    train_distill, "ELR: a student on the encoder's output, distilled from a full-resolution "
    "teacher."))  # fmt: skip
SCHEMES.register("attention")(_teacher_student(
    train_attention, "STAT: spatial and temporal attention transferred from a full-resolution "
    "teacher."))  # fmt: skip
