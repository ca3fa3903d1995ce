"""BDQ's three-player adversarial training (Kumawat & Nagahara, Sec. 3.2), top to bottom.

Every batch takes two steps:
  1. the privacy model P fixed, the encoder E and action model T minimise
     CE(T(E(V)), action) - alpha * entropy(P(E(V)))                          (Eq. 1)
  2. E and T fixed, P minimises CE(P(E(V)), privacy) on the encoded frames   (Eq. 2)
Optionally P is re-initialised every ``privacy_reset_every`` epochs (Wu et al.'s restarts), so
the encoder cannot settle into fooling one stale adversary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from privar.data.dataset import StudyData
from privar.objectives import adversarial_loss
from privar.study import AdversarialConfig, TrainConfig
from privar.train.common import (
    Checkpoint,
    Report,
    autocast,
    batches,
    evaluate,
    frames,
    make_optimizer,
    prepare_module,
    privacy_step,
    set_lr,
)


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
    ``action_acc``, ``privacy_acc`` (in-loop adversary, per frame) and ``loss``."""
    encoder, action_model = prepare_module(encoder, device), prepare_module(action_model, device)
    privacy_model = prepare_module(make_privacy_model(), device)
    opt_et = make_optimizer(action_model.parameters(), cfg, encoder=encoder)
    opt_p = make_optimizer(privacy_model.parameters(), cfg)
    ckpt = Checkpoint(checkpoint_dir, "adversarial")
    state = dict(encoder=encoder, action=action_model, privacy=privacy_model, opt_et=opt_et,
                 opt_p=opt_p)  # fmt: skip
    start = ckpt.resume(**state)
    metrics = ckpt.metrics

    for epoch in range(start, cfg.epochs):
        if adv.privacy_reset_every and epoch and epoch % adv.privacy_reset_every == 0:
            privacy_model = prepare_module(make_privacy_model(), device)
            opt_p = make_optimizer(privacy_model.parameters(), cfg)
            state.update(privacy=privacy_model, opt_p=opt_p)
        set_lr(opt_et, epoch, cfg)
        set_lr(opt_p, epoch, cfg)
        for m in (encoder, action_model, privacy_model):
            m.train()
        total, steps = 0.0, 0
        for b in batches(data, "train", True, epoch, cfg.batch_size, device):
            # Step 1: E and T against a fixed P. P's weights get no gradient, but the entropy's
            # gradient flows through P into E.
            privacy_model.requires_grad_(False)
            with autocast(device):
                z = encoder(b.x)
                loss = adversarial_loss(action_model(z), b.action, privacy_model(frames(z)),
                                        adv.alpha)  # fmt: skip
            opt_et.zero_grad(set_to_none=True)
            loss.backward()
            opt_et.step()
            privacy_model.requires_grad_(True)

            # Step 2: P on what the updated encoder shows it.
            with torch.no_grad(), autocast(device):
                z = encoder(b.x)
            privacy_step(privacy_model, opt_p, z, b.privacy, device)
            total, steps = total + float(loss.detach()), steps + 1

        metrics = evaluate(data, encoder, device, cfg.batch_size, action_model, privacy_model)
        metrics["loss"] = total / max(steps, 1)
        ckpt.save(epoch, metrics, **state)
        if report:
            report(epoch, metrics)
    return metrics
