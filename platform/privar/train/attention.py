"""STAT: spatial-temporal attention transfer from a full-resolution teacher to a low-resolution
student (Bai et al.), top to bottom.

1. The teacher (same K-segment architecture) is trained on full-resolution clips, or loaded.
2. Optional unsupervised pre-stage (Sec. 3.3.1): ``pretrain_epochs`` of SAT + TAT only on the
   training clips, their labels unused.
3. Joint stage: w_ce CE + w_sat SAT + w_tat TAT (Eq. 4): SAT over the 4 ResNet blocks'
   attention maps, TAT over the temporal attention module's two FC outputs, with per-block and
   per-layer weights that roll every ``rolling_every`` epochs (Sec. 3.3.2).
The student sees the encoder's output (``elr``: 12x16 and bilinear back up).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from privar.data.dataset import StudyData
from privar.objectives import rolling_weights, sat_loss, stat_total, tat_loss
from privar.study import AttentionConfig, TrainConfig
from privar.train.classifier import load_or_train_teacher
from privar.train.common import (
    Batch,
    Checkpoint,
    Report,
    autocast,
    batches,
    make_optimizer,
    maybe_compile,
    prepare_module,
)
from privar.train.student import train_student


def stage_weights(att: AttentionConfig, epoch: int) -> tuple[list[float], list[float]]:
    """(SAT per-block weights, TAT per-layer weights: FC-64 then FC-K) for ``epoch``."""
    if not att.rolling:
        return list(att.sat_weights), list(att.tat_weights)
    return (rolling_weights(att.sat_weights, epoch, att.rolling_every),
            rolling_weights(att.tat_weights, epoch, att.rolling_every))  # fmt: skip


def train_attention(
    data: StudyData,
    encoder: nn.Module,
    student: nn.Module,
    teacher: nn.Module,
    make_privacy_model: Callable[[], nn.Module],
    cfg: TrainConfig,
    att: AttentionConfig,
    device: torch.device,
    checkpoint_dir: str | Path | None = None,
    report: Report | None = None,
) -> dict[str, float]:
    """``student`` and ``teacher`` expose ``forward_attention(x)`` (logits, the 4 block
    activations, the temporal module's FC outputs). Returns the last joint epoch's metrics."""
    teacher = prepare_module(teacher, device)
    teacher_metrics = load_or_train_teacher(data, teacher, cfg, device, att.teacher_epochs,
                                            att.teacher_checkpoint, checkpoint_dir)  # fmt: skip
    encoder, student = prepare_module(encoder, device), prepare_module(student, device)
    opt = make_optimizer(student.parameters(), cfg, encoder=encoder)
    attend_s, attend_t = (maybe_compile(m.forward_attention, device, cfg.compile)
                          for m in (student, teacher))  # fmt: skip

    def transfer(b: Batch, z: torch.Tensor, epoch: int, w_ce: float) -> torch.Tensor:
        s = attend_s(z)
        with torch.no_grad():
            t = attend_t(b.x)  # the teacher sees the full-resolution clip
        sat_w, tat_w = stage_weights(att, epoch)
        ce = F.cross_entropy(s.logits, b.action) if w_ce else s.logits.new_zeros(())
        sat = sat_loss(s.blocks, t.blocks, sat_w, att.p)
        tat = tat_loss([s.temporal_hidden, s.temporal], [t.temporal_hidden, t.temporal], tat_w,
                       att.p)  # fmt: skip
        return stat_total(ce, sat, tat, w_ce, att.w_sat, att.w_tat)

    # Stage 2: the unsupervised pre-stage, SAT + TAT only.
    pre = Checkpoint(checkpoint_dir, "attention_pretrain")
    for epoch in range(pre.resume(encoder=encoder, student=student, opt=opt),
                       att.pretrain_epochs):  # fmt: skip
        encoder.train()
        student.train()
        for b in batches(data, "train", True, epoch, cfg.batch_size, device):
            with autocast(device):
                loss = transfer(b, encoder(b.x), epoch, w_ce=0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        pre.save(epoch, encoder=encoder, student=student, opt=opt)

    # Stage 3: joint training with labels.
    metrics = train_student(
        data, encoder, student, make_privacy_model, cfg, device,
        lambda b, z, epoch: transfer(b, z, epoch, att.w_ce),
        Checkpoint(checkpoint_dir, "attention"), report, opt=opt,
    )  # fmt: skip
    return {**metrics, **teacher_metrics}
