"""The teacher -> student loop that ELR's distillation and STAT's attention transfer share.

A frozen teacher has seen full-resolution clips; the student sees only the encoder's output and
minimises the scheme's ``loss_fn``. A privacy model trained alongside on that output (it does not
push back on the encoder, unlike BDQ's adversary) reports how much identity is left.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from privar.data.dataset import StudyData
from privar.study import TrainConfig
from privar.train.common import (
    Batch,
    Checkpoint,
    Report,
    autocast,
    batches,
    evaluate,
    make_optimizer,
    maybe_compile,
    prepare_module,
    privacy_step,
    set_lr,
)

StudentLoss = Callable[[Batch, torch.Tensor, int], torch.Tensor]
"""(batch, encoded clips z, epoch) -> the scheme's loss for the student."""


def train_student(
    data: StudyData,
    encoder: nn.Module,
    student: nn.Module,
    make_privacy_model: Callable[[], nn.Module],
    cfg: TrainConfig,
    device: torch.device,
    loss_fn: StudentLoss,
    checkpoint: Checkpoint,
    report: Report | None = None,
    opt: torch.optim.Optimizer | None = None,
) -> dict[str, float]:
    """Train ``encoder`` and ``student`` on ``loss_fn`` for ``cfg.epochs``, resuming from
    ``checkpoint``. ``opt`` continues an optimiser from an earlier stage. Returns the last
    epoch's ``action_acc`` (student), ``privacy_acc`` (monitor), ``loss`` and
    ``data_wait_frac`` (the share of the training pass spent waiting for the next batch)."""
    encoder, student = prepare_module(encoder, device), prepare_module(student, device)
    privacy_model = prepare_module(make_privacy_model(), device)
    opt = opt or make_optimizer(student.parameters(), cfg, encoder=encoder)
    opt_p = make_optimizer(privacy_model.parameters(), cfg)
    state = dict(encoder=encoder, student=student, privacy=privacy_model, opt=opt, opt_p=opt_p)
    start = checkpoint.resume(**state)
    metrics = checkpoint.metrics
    # Compiled views from here on (same parameters); ``state`` keeps the modules themselves.
    encoder, student, privacy_model = (
        maybe_compile(m, device, cfg.compile) for m in (encoder, student, privacy_model)
    )
    for epoch in range(start, cfg.epochs):
        set_lr(opt, epoch, cfg)
        set_lr(opt_p, epoch, cfg)
        for m in (encoder, student, privacy_model):
            m.train()
        total, steps = 0.0, 0
        feed = batches(data, "train", True, epoch, cfg.batch_size, device)
        for b in feed:
            with autocast(device):
                z = encoder(b.x)
                loss = loss_fn(b, z, epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            privacy_step(privacy_model, opt_p, z, b.privacy, device)
            total, steps = total + float(loss.detach()), steps + 1

        metrics = evaluate(data, encoder, device, cfg.batch_size, student, privacy_model)
        metrics["loss"] = total / max(steps, 1)
        metrics["data_wait_frac"] = feed.wait_frac
        checkpoint.save(epoch, metrics, **state)
        if report:
            report(epoch, metrics)
    return metrics
