"""Training objectives as pure functions: BDQ's adversarial entropy (``adversarial``), ELR's
cross-resolution distillation (``distill``) and STAT's attention transfer (``attention``).

Each function documents its tensor shapes and the paper equation it implements; none has side
effects, and all run on any device and under autocast (reductions in float32)."""

from __future__ import annotations

from privar.objectives.adversarial import adversarial_loss, entropy, max_entropy, privacy_loss
from privar.objectives.attention import (
    rolling_weights,
    sat_loss,
    spatial_attention_map,
    stat_total,
    tat_loss,
)
from privar.objectives.distill import KDDirection, distill_total, kd_loss

__all__ = [
    "KDDirection",
    "adversarial_loss",
    "distill_total",
    "entropy",
    "kd_loss",
    "max_entropy",
    "privacy_loss",
    "rolling_weights",
    "sat_loss",
    "spatial_attention_map",
    "stat_total",
    "tat_loss",
]
