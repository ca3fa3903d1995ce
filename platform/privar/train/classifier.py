"""Plain supervised training of one classifier on a frozen encoder's output, CE only.

Used for the teachers of distillation and attention transfer (on full-resolution clips) and,
later, for the fresh models of the adversary farm.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from privar.data.dataset import StudyData
from privar.study import TrainConfig
from privar.train.common import (
    Checkpoint,
    Report,
    autocast,
    batches,
    evaluate,
    make_optimizer,
    maybe_compile,
    prepare_module,
    set_lr,
)


def train_classifier(
    data: StudyData,
    encoder: nn.Module,
    model: nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    epochs: int | None = None,
    checkpoint_dir: str | Path | None = None,
    stage: str = "classifier",
    report: Report | None = None,
) -> dict[str, float]:
    """Train action model ``model`` on ``encoder(clip)`` (the encoder frozen) for ``epochs``
    (default ``cfg.epochs``). Returns the last epoch's ``action_acc`` on the validation split
    and ``data_wait_frac`` (the share of the training pass spent waiting for the next batch)."""
    epochs = epochs or cfg.epochs
    encoder = prepare_module(encoder, device).eval().requires_grad_(False)
    model = prepare_module(model, device)
    opt = make_optimizer(model.parameters(), cfg)
    ckpt = Checkpoint(checkpoint_dir, stage)
    state = dict(model=model, opt=opt)
    start = ckpt.resume(**state)
    # Compiled views from here on (same parameters); ``state`` keeps the modules themselves.
    encoder, model = (maybe_compile(m, device, cfg.compile) for m in (encoder, model))
    metrics: dict[str, float] = {}
    for epoch in range(start, epochs):
        set_lr(opt, epoch, cfg, epochs)
        model.train()
        feed = batches(data, "train", True, epoch, cfg.batch_size, device)
        for b in feed:
            with autocast(device):
                with torch.no_grad():
                    z = encoder(b.x)
                loss = F.cross_entropy(model(z), b.action)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        metrics = evaluate(data, encoder, device, cfg.batch_size, action_model=model)
        metrics["data_wait_frac"] = feed.wait_frac
        ckpt.save(epoch, **state)
        if report:
            report(epoch, metrics)
    if start >= epochs:  # finished in an earlier run: measure what was loaded
        metrics = evaluate(data, encoder, device, cfg.batch_size, action_model=model)
    return metrics


def load_or_train_teacher(
    data: StudyData,
    teacher: nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    epochs: int | None,
    checkpoint: str | None,
    checkpoint_dir: str | Path | None,
) -> dict[str, float]:
    """The teacher of ELR and STAT: an action model on full-resolution clips (no encoder),
    loaded from ``checkpoint`` (a state dict file) or trained here first. Leaves it frozen."""
    hr = nn.Identity()
    if checkpoint:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        teacher.load_state_dict(state.get("model", state))
        prepare_module(teacher, device)
        metrics = evaluate(data, hr, device, cfg.batch_size, action_model=teacher)
    else:
        metrics = train_classifier(data, hr, teacher, cfg, device, epochs, checkpoint_dir,
                                   stage="teacher")  # fmt: skip
    teacher.eval().requires_grad_(False)
    return {"teacher_action_acc": metrics.get("action_acc", float("nan"))}
