"""ELR's cross-resolution knowledge distillation: KL between HR-teacher and LR-student logits.

ELR (Sec. 4.4, Eq. 2) writes, with ``P^high`` the HR branch (teacher) and ``P^low`` the LR branch
(student) distributions::

    L_logit = - sum_{x in C} P^high(x) * log( P^low(x) / P^high(x) )

which is ``KL(P^high || P^low) = KL(p_teacher || p_student)``, Hinton et al.'s direction, and no
temperature. The authors' released code (``train_ucf_kd.py``) instead computes::

    KLDivLoss(reduction="batchmean")(LogSoftmax(hr_logits), Softmax(lr_logits))

``KLDivLoss(input, target) = sum target * (log target - input)``, so that is
``KL(p_student || p_teacher)``, the reverse direction, at temperature 1 and without ``T^2``,
added to the student's cross-entropy as ``1 * CE + 1.25 * KL``. ``kd_loss`` offers both:

- ``direction="teacher_student"``: ``KL(p_t || p_s) = sum_c p_t,c (log p_t,c - log p_s,c)``.
  The paper's Eq. (2) and Hinton's distillation (the usual choice; mean-seeking: the student is
  penalised wherever the teacher puts mass and the student does not).
- ``direction="student_teacher"``: ``KL(p_s || p_t) = sum_c p_s,c (log p_s,c - log p_t,c)``.
  The released code (mode-seeking: the student is penalised for mass where the teacher has none).

with ``p_s = softmax(z_s / T)``, ``p_t = softmax(z_t / T)``, summed over classes and averaged
over the batch (``batchmean``), optionally times ``T^2`` (Hinton et al., Sec. 2: gradients of
the soft term scale as ``1/T^2``, so multiplying by ``T^2`` keeps its weight relative to the
hard-label cross-entropy when ``T`` changes). ELR itself uses ``T = 1``, where the two agree.

Precision: the log-softmaxes run in float32 (float64 stays float64). A KL is a sum of differences
of nearly equal log-probabilities once the student is close to the teacher; half precision would
round it to noise or to a small negative number.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["KDDirection", "distill_total", "kd_loss"]

KDDirection = Literal["teacher_student", "student_teacher"]
_DIRECTIONS = ("teacher_student", "student_teacher")


def _upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 1.0,
    direction: KDDirection = "teacher_student",
    scale_t2: bool = False,
) -> Tensor:
    """Distillation KL between softened teacher and student predictions (ELR Eq. 2; Hinton).

    Args:
        student_logits: ``(B, C)`` pre-softmax scores of the LR student.
        teacher_logits: ``(B, C)`` pre-softmax scores of the HR teacher. Detached here: no
            gradient ever reaches the teacher through this loss.
        temperature: ``T > 0``; both logits are divided by it before the softmax.
        direction: ``"teacher_student"`` -> ``KL(p_teacher || p_student)`` (paper Eq. 2, Hinton);
            ``"student_teacher"`` -> ``KL(p_student || p_teacher)`` (the authors' code).
        scale_t2: multiply by ``T^2`` (Hinton's scaling).

    Returns:
        A 0-dim float32 tensor (float64 for float64 input), ``>= 0``, ``0`` iff the two softened
        distributions agree. Reduction: sum over classes, mean over the batch.

    With ``direction="teacher_student"`` the gradient w.r.t. the student logits is
    ``(p_s - p_t) / (B * T)`` (times ``T^2`` with ``scale_t2``).
    """
    temperature = float(temperature)
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"kd_loss: temperature must be a finite number > 0, got {temperature}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"kd_loss: direction must be one of {_DIRECTIONS}, got {direction!r}")
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "kd_loss: student and teacher logits must both be (B, C) of the same shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    if student_logits.shape[0] == 0:
        raise ValueError("kd_loss: empty batch")
    log_ps = F.log_softmax(_upcast(student_logits) / temperature, dim=-1)
    log_pt = F.log_softmax(_upcast(teacher_logits.detach()) / temperature, dim=-1)
    if direction == "teacher_student":
        kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=-1)
    else:
        kl = (log_ps.exp() * (log_ps - log_pt)).sum(dim=-1)
    loss = kl.mean()
    return loss * temperature**2 if scale_t2 else loss


def distill_total(ce: Tensor, kd: Tensor, weight: float) -> Tensor:
    """The student's objective: ``ce + weight * kd`` (ELR's code: ``1 * CE + 1.25 * KL``).

    Args:
        ce: 0-dim cross-entropy of the student on the action labels.
        kd: 0-dim ``kd_loss``.
        weight: ``>= 0``.
    """
    weight = float(weight)
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"distill_total: weight must be a finite number >= 0, got {weight}")
    return ce + weight * kd
