"""What one training run needs, as small frozen values: no study, no search, no Ray.

A recipe (``privar.recipes``) reads the study and resolves every model's keyword arguments
through its registry (:meth:`privar.registry.Registry.arguments`: what the entry derives from the
data section, then the study's ``params``); the loops, the trials and the farm get these specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from privar.study import (
    AdversarialConfig,
    AttentionConfig,
    DistillConfig,
    EncoderConfig,
    TrainConfig,
)


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry to build: its ``name``, its own keyword arguments (``kwargs``, as its
    registry resolved them) and where its weights come from (``pretrained``: ``None``, a local
    state-dict file or ``torchvision``). The builder adds ``num_classes``, which the data's
    labels decide."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None


SchemeConfig = AdversarialConfig | DistillConfig | AttentionConfig


@dataclass(frozen=True)
class TrainSpec:
    """One training run: the ``scheme`` (a :data:`privar.train.schemes.SCHEMES` name) with its
    own study section (``section``), the ``encoder`` (name and resolved parameters, as saved
    with the trained encoder), the ``action`` model (the student, and the teacher of ``distill``
    and ``attention``) and the in-loop ``privacy`` model, the label counts of the data
    (``num_actions``, ``num_privacy``), the optimisation (``train``) and the ``seed``."""

    scheme: str
    encoder: EncoderConfig
    action: ModelSpec
    privacy: ModelSpec
    num_actions: int
    num_privacy: int
    train: TrainConfig
    section: SchemeConfig
    seed: int = 0
