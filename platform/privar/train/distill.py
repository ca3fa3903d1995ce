"""ELR: extreme low resolution with cross-resolution knowledge distillation (Kwong et al.).

A teacher sees full-resolution clips (trained first, or loaded); the student sees only the
encoder's output (``elr``: down to 12x16 and bilinear back up) and minimises
CE(student, action) + weight * KD(teacher -> student)  (the paper's Eq. 2; see
:func:`privar.objectives.kd_loss` for the direction the authors' code uses).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from privar.data.dataset import StudyData
from privar.objectives import distill_total, kd_loss
from privar.study import DistillConfig, TrainConfig
from privar.train.classifier import load_or_train_teacher
from privar.train.common import Batch, Checkpoint, Report, maybe_compile, prepare_module
from privar.train.student import train_student


def train_distill(
    data: StudyData,
    encoder: nn.Module,
    student: nn.Module,
    teacher: nn.Module,
    make_privacy_model: Callable[[], nn.Module],
    cfg: TrainConfig,
    kd: DistillConfig,
    device: torch.device,
    checkpoint_dir: str | Path | None = None,
    report: Report | None = None,
) -> dict[str, float]:
    """Returns the last epoch's metrics: the student's ``action_acc``, the monitor's
    ``privacy_acc``, ``teacher_action_acc`` and ``loss``."""
    teacher = prepare_module(teacher, device)
    teacher_metrics = load_or_train_teacher(data, teacher, cfg, device, kd.teacher_epochs,
                                            kd.teacher_checkpoint, checkpoint_dir)  # fmt: skip

    run_student, run_teacher = (maybe_compile(m, device, cfg.compile) for m in (student, teacher))

    def loss_fn(b: Batch, z: torch.Tensor, epoch: int) -> torch.Tensor:
        logits = run_student(z)
        with torch.no_grad():
            soft = run_teacher(b.x)  # the teacher sees the full-resolution clip
        kd_term = kd_loss(logits, soft, kd.temperature, kd.direction, kd.scale_t2)
        return distill_total(F.cross_entropy(logits, b.action), kd_term, kd.weight)

    metrics = train_student(data, encoder, student, make_privacy_model, cfg, device, loss_fn,
                            Checkpoint(checkpoint_dir, "distill"), report)  # fmt: skip
    return {**metrics, **teacher_metrics}
