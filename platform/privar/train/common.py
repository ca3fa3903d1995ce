"""What every training loop shares: device, precision and compilation, batches on the device
(prefetched while the step runs), optimisers and schedules, evaluation, and resumable
checkpoints. Loops stay readable top to bottom; this is their toolbox (the steps' own part,
Ray-free, is :mod:`privar.train.steps`). Which clips a split holds, and which split
evaluates, is the data's business (:mod:`privar.data.dataset`).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from privar.data.augment import mirror
from privar.data.dataset import StudyData, eval_split, split_clips
from privar.data.stream import ClipBatch
from privar.errors import UserError
from privar.study import TrainConfig
from privar.train.prefetch import Prefetch
from privar.train.steps import autocast, frame_labels, frames, to_input

# Re-exported: the loops and the farm take their whole toolbox from here.
from privar.train.steps import maybe_compile as maybe_compile
from privar.train.steps import prepare_module as prepare_module
from privar.train.steps import privacy_step as privacy_step

Report = Callable[[int, dict[str, float]], None]
"""Called after every epoch with (epoch, metrics), e.g. to log to MLflow or Ray Tune."""


def pick_device(name: str | None = None) -> torch.device:
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig,
                   encoder: nn.Module | None = None) -> torch.optim.Optimizer:  # fmt: skip
    """cfg's optimiser over ``params`` at ``cfg.lr`` and, when given, the ``encoder``'s
    parameters at ``cfg.lr * cfg.encoder_lr_scale`` (a BDQ encoder's few parameters are in
    pixels and quantisation steps, not in a network weight's units). Each param group keeps its
    ``lr_scale``, which :func:`set_lr` applies to every epoch's lr."""
    groups = [{"params": [p for p in params if p.requires_grad], "lr_scale": 1.0}]
    if encoder is not None:
        mine = [p for p in encoder.parameters() if p.requires_grad]
        groups.insert(0, {"params": mine, "lr_scale": cfg.encoder_lr_scale})
    groups = [g for g in groups if g["params"]]
    for g in groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)  # fmt: skip
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(epoch: int, cfg: TrainConfig, epochs: int | None = None) -> float:
    """The lr multiplier for ``epoch`` (0-based): linear warm-up, then the schedule."""
    epochs = epochs or cfg.epochs
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    if cfg.schedule == "cosine":
        span = max(epochs - cfg.warmup_epochs, 1)
        return 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    if cfg.schedule == "step":
        return cfg.step_gamma ** (epoch // cfg.step_every)
    return 1.0


def set_lr(opt: torch.optim.Optimizer, epoch: int, cfg: TrainConfig, epochs: int | None = None):
    for group in opt.param_groups:
        group["lr"] = cfg.lr * group.get("lr_scale", 1.0) * lr_factor(epoch, cfg, epochs)


@dataclass
class Batch:
    """A batch on the device: x float (B, C, T, H, W) in [0, 1]; action, privacy (B,)."""

    x: torch.Tensor
    action: torch.Tensor
    privacy: torch.Tensor


def batches(data: StudyData, split: str, train: bool, epoch: int, batch_size: int,
            device: torch.device) -> Prefetch[ClipBatch, Batch]:  # fmt: skip
    """The clips of ``split`` (:func:`~privar.data.dataset.split_clips`: an empty split is an
    error) on ``device``, a random half mirrored when ``train``; the next batch is cut and
    copied while the current one trains, and the iterable's ``wait_frac`` is the share of the
    epoch spent waiting for it."""

    def finish(b: ClipBatch) -> Batch:
        x = to_input(b.clip, device)
        return Batch(mirror(x) if train else x, b.action, b.privacy)

    return Prefetch(split_clips(data, split, train, epoch, batch_size), device, finish)


@torch.no_grad()
def evaluate(
    data: StudyData,
    encoder: nn.Module,
    device: torch.device,
    batch_size: int,
    action_model: nn.Module | None = None,
    privacy_model: nn.Module | None = None,
    split: str | None = None,
) -> dict[str, float]:
    """Top-1 on ``split`` (by default the evaluation split: ``val``, else ``test``):
    ``action_acc`` per clip (centre clip), ``privacy_acc`` per frame, averaged over all frames of
    all clips (BDQ's in-loop view)."""
    split = split or eval_split(data)
    modules = [m for m in (encoder, action_model, privacy_model) if m is not None]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    hits = {"action_acc": [0, 0], "privacy_acc": [0, 0]}
    for b in batches(data, split, False, 0, batch_size, device):
        with autocast(device):
            z = encoder(b.x)
            if action_model is not None:
                pred = action_model(z).argmax(1)
                hits["action_acc"][0] += int((pred == b.action).sum())
                hits["action_acc"][1] += len(pred)
            if privacy_model is not None:
                pred = privacy_model(frames(z)).argmax(1)
                hits["privacy_acc"][0] += int((pred == frame_labels(b.privacy, z.shape[2])).sum())
                hits["privacy_acc"][1] += len(pred)
    for m, mode in zip(modules, modes, strict=True):
        m.train(mode)
    return {k: c / n for k, (c, n) in hits.items() if n}


class Checkpoint:
    """One stage's resumable state in ``folder/<stage>.pt``: module and optimiser state dicts,
    the last finished epoch and its metrics (a run killed after its last epoch resumes to
    nothing left to train, and still returns them). Written to a temporary file in the same
    folder, flushed to disk, then renamed over the previous one: a kill, a full disk or a power
    cut mid-save leaves the previous checkpoint intact, never a half-written file under its name.
    A folder that cannot take the file (full, read-only) is a :class:`UserError` naming it."""

    def __init__(self, folder: str | os.PathLike | None, stage: str) -> None:
        self.path = Path(folder) / f"{stage}.pt" if folder else None
        self.metrics: dict[str, float] = {}  # the saved epoch's metrics, after resume()

    def save(self, epoch: int, metrics: dict[str, float] | None = None,
             **state: nn.Module | torch.optim.Optimizer) -> None:  # fmt: skip
        if self.path is None:
            return
        blob = {"epoch": epoch, "metrics": dict(metrics or {}),
                **{k: v.state_dict() for k, v in state.items()}}  # fmt: skip
        # Serialised in memory first: torch's own writer turns a failed write (ENOSPC) into a
        # RuntimeError about stream positions; a plain file write says what went wrong.
        buffer = io.BytesIO()
        torch.save(blob, buffer)
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())  # the bytes on disk before the name points at them
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise UserError(f"cannot save a checkpoint in {self.path.parent}: "
                            f"{e.strerror or e}") from None  # fmt: skip

    def resume(self, **state: nn.Module | torch.optim.Optimizer) -> int:
        """Load the saved state into ``state``'s objects; returns the epoch to start from."""
        if self.path is None or not self.path.exists():
            return 0
        blob = torch.load(self.path, map_location="cpu", weights_only=True)
        for k, obj in state.items():
            obj.load_state_dict(blob[k])
        self.metrics = blob.get("metrics", {})
        return int(blob["epoch"]) + 1
