"""ELR: extreme low resolution with cross-resolution knowledge distillation (Kwong et al.).

A teacher sees full-resolution clips (trained first, or loaded); the student sees only the
encoder's output (``elr``: down to 12x16 and bilinear back up) and minimises
CE(student, action) + weight * KD(teacher -> student). A privacy model trained alongside on the
encoder's output (it does not push back on the encoder) reports how much identity is left.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from privar.data.stream import StudyData
from privar.objectives import distill_total, kd_loss
from privar.study import DistillConfig, TrainConfig
from privar.train.classifier import load_or_train_teacher
from privar.train.common import (
    Checkpoint,
    Report,
    autocast,
    batches,
    evaluate,
    make_optimizer,
    prepare_module,
    privacy_step,
    set_lr,
)


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
    encoder, student = prepare_module(encoder, device), prepare_module(student, device)
    privacy_model = prepare_module(make_privacy_model(), device)
    opt = make_optimizer(chain(encoder.parameters(), student.parameters()), cfg)
    opt_p = make_optimizer(privacy_model.parameters(), cfg)
    ckpt = Checkpoint(checkpoint_dir, "distill")
    state = dict(encoder=encoder, student=student, privacy=privacy_model, opt=opt, opt_p=opt_p)
    start = ckpt.resume(**state)
    metrics: dict[str, float] = {}

    for epoch in range(start, cfg.epochs):
        set_lr(opt, epoch, cfg)
        set_lr(opt_p, epoch, cfg)
        encoder.train(), student.train(), privacy_model.train()
        total, steps = 0.0, 0
        for b in batches(data, "train", True, epoch, cfg.batch_size, device):
            with autocast(device):
                z = encoder(b.x)
                logits = student(z)
                with torch.no_grad():
                    soft = teacher(b.x)  # the teacher sees the full-resolution clip
                ce = F.cross_entropy(logits, b.action)
                loss = distill_total(ce, kd_loss(logits, soft, kd.temperature, kd.direction,
                                                 kd.scale_t2), kd.weight)  # fmt: skip
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            privacy_step(privacy_model, opt_p, z, b.privacy, device)
            total, steps = total + float(loss), steps + 1

        metrics = evaluate(data, encoder, device, cfg.batch_size, student, privacy_model)
        metrics.update(teacher_metrics, loss=total / max(steps, 1))
        ckpt.save(epoch, **state)
        if report:
            report(epoch, metrics)
    return metrics
