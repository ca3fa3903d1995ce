"""BDQ's three-player adversarial training (Kumawat & Nagahara, Sec. 3.2), top to bottom.

Every batch takes two steps:
  1. the privacy model P fixed, the encoder E and action model T minimise
     CE(T(E(V)), action) - alpha * entropy(P(E(V)))                          (Eq. 1)
  2. E and T fixed, P minimises CE(P(E(V)), privacy) on the encoded frames   (Eq. 2),
     ``privacy_steps`` times
Optionally P is re-initialised every ``privacy_reset_every`` epochs (Wu et al.'s restarts), so
the encoder cannot settle into fooling one stale adversary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch.nn as nn

from privar.data.dataset import StudyData
from privar.study import AdversarialConfig, TrainConfig
from privar.train.common import (
    Checkpoint,
    Report,
    batches,
    evaluate,
    make_optimizer,
    maybe_compile,
    prepare_module,
    set_lr,
)
from privar.train.steps import adversarial_step


def train_adversarial(
    data: StudyData,
    encoder: nn.Module,
    action_model: nn.Module,
    make_privacy_model: Callable[[], nn.Module],
    cfg: TrainConfig,
    adv: AdversarialConfig,
    device,
    checkpoint_dir: str | Path | None = None,
    report: Report | None = None,
) -> dict[str, float]:
    """Train ``encoder`` and ``action_model`` against a privacy model from
    ``make_privacy_model`` (called again at every reset). Returns the last epoch's metrics:
    ``action_acc``, ``privacy_acc`` (in-loop adversary, per frame), ``loss`` and
    ``data_wait_frac`` (the share of the training pass spent waiting for the next batch)."""
    encoder, action_model = prepare_module(encoder, device), prepare_module(action_model, device)
    privacy_model = prepare_module(make_privacy_model(), device)
    opt_et = make_optimizer(action_model.parameters(), cfg, encoder=encoder)
    opt_p = make_optimizer(privacy_model.parameters(), cfg)
    ckpt = Checkpoint(checkpoint_dir, "adversarial")
    state = dict(encoder=encoder, action=action_model, privacy=privacy_model, opt_et=opt_et,
                 opt_p=opt_p)  # fmt: skip
    start = ckpt.resume(**state)
    metrics = ckpt.metrics
    # From here on the names are the compiled views (same parameters); ``state`` keeps the
    # modules themselves for the checkpoints.
    encoder, action_model, privacy_model = (
        maybe_compile(m, device, cfg.compile) for m in (encoder, action_model, privacy_model)
    )

    # Held during the warm-up: only the parameters meant to train, never ones frozen on purpose.
    trainable = [p for p in state["encoder"].parameters() if p.requires_grad]
    for epoch in range(start, cfg.epochs):
        if adv.privacy_reset_every and epoch and epoch % adv.privacy_reset_every == 0:
            fresh = prepare_module(make_privacy_model(), device)
            opt_p = make_optimizer(fresh.parameters(), cfg)
            state.update(privacy=fresh, opt_p=opt_p)
            privacy_model = maybe_compile(fresh, device, cfg.compile)
        for p in trainable:
            p.requires_grad_(epoch >= adv.encoder_warmup_epochs)
        set_lr(opt_et, epoch, cfg)
        set_lr(opt_p, epoch, cfg)
        for m in (encoder, action_model, privacy_model):
            m.train()
        total, steps = 0.0, 0
        feed = batches(data, "train", True, epoch, cfg.batch_size, device)
        for b in feed:
            loss = adversarial_step(encoder, action_model, privacy_model, opt_et, opt_p, b.x,
                                    b.action, b.privacy, adv.alpha, device,
                                    privacy_steps=adv.privacy_steps)  # fmt: skip
            total, steps = total + loss, steps + 1

        metrics = evaluate(data, encoder, device, cfg.batch_size, action_model, privacy_model)
        metrics["loss"] = total / max(steps, 1)
        metrics["data_wait_frac"] = feed.wait_frac
        ckpt.save(epoch, metrics, **state)
        if report:
            report(epoch, metrics)
    return metrics
