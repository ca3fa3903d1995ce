"""The adversary farm's training core: attack one frozen encoder with fresh models.

BDQ's validation protocol (paper 001, Sec. 4.2): freeze the trained encoder, train newly
instantiated models on its output ``z = encoder(x)`` of the train split, and score them on the
validation split. The farm runs three kinds of attack:

* :func:`attack_privacy`: a 2D privacy model on the frames of ``z`` (Sec. 5.2 runs ten of them),
  or one rung of it at a time (:func:`privacy_rung`), for a farm that races its adversaries;
* :func:`attack_reconstruction`: a 3D UNet from ``z`` back to the raw frames (Sec. 5.4), judged
  by PSNR, SSIM and, optionally, a privacy model trained on raw frames (:func:`train_raw_judge`)
  reading identity off the reconstructions;
* :func:`fresh_action`: a fresh action model on ``z`` (Sec. 5.3), so the candidate's utility is
  not the in-loop model's, co-adapted to it.

The encoder is frozen for the attack (eval mode, no gradients, encoded under ``torch.no_grad``)
and its ``requires_grad`` flags and train/eval mode are restored afterwards; it stays on
``device``. Every attack seeds torch with ``seed`` first. No Ray Tune and no MLflow here.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from privar.data.dataset import StudyData, eval_split
from privar.farm.metrics import psnr, ssim
from privar.models import create_action_model, create_privacy_model, create_reconstruction_model
from privar.study import TrainConfig
from privar.train.classifier import train_classifier
from privar.train.common import (
    autocast,
    batches,
    frame_labels,
    frames,
    make_optimizer,
    prepare_module,
    privacy_step,
    set_lr,
)


@contextmanager
def frozen(module: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """``module`` on ``device``, in eval mode with every ``requires_grad`` off, for the ``with``
    block; its flags and mode come back afterwards (it stays on ``device``). Eval mode matters:
    an encoder with batch norm would otherwise move its running statistics while attacked."""
    module = prepare_module(module, device)
    flags = [p.requires_grad for p in module.parameters()]
    modes = [m.training for m in module.modules()]
    module.eval().requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        for m, mode in zip(module.modules(), modes, strict=True):
            m.training = mode


def _encode(encoder: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` float (B, 3, T, H, W) in [0, 1] -> ``z`` (B, C, T', H', W'), no graph."""
    with torch.no_grad(), autocast(device):
        return encoder(x)


def _check_epochs(epochs: int) -> None:
    if epochs < 1:
        raise ValueError(f"epochs: must be at least 1, got {epochs}")


# --- privacy ---------------------------------------------------------------------------------


def frame_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 per frame, averaged over all frames of all clips (BDQ's ``privacy_acc``).
    ``probs`` (N_clips, T, K) class probabilities (or logits), ``labels`` (N_clips,)."""
    return float((probs.argmax(-1) == labels[:, None]).float().mean())


def clip_vote_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 of the softmax averaged over each clip's frames (``privacy_acc_clip``): a stronger
    attack than per-frame top-1, since an attacker with a clip pools its frames. ``probs``
    (N_clips, T, K) softmax outputs, ``labels`` (N_clips,)."""
    return float((probs.mean(1).argmax(-1) == labels).float().mean())


def frame_nll(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Cross-entropy per frame in nats, averaged over all frames (``privacy_nll``): what an
    adversary still at chance accuracy has learnt, which a race ranks ties by. ``probs``
    (N_clips, T, K) softmax outputs, ``labels`` (N_clips,)."""
    hit = probs.gather(-1, labels[:, None, None].expand(-1, probs.shape[1], 1))
    # A probability that underflowed to 0 in float32 costs as much as the smallest normal one.
    return float(-hit.clamp_min(torch.finfo(probs.dtype).tiny).log().mean())


@dataclass(frozen=True)
class AdversaryState:
    """A privacy adversary part-way through its attack, to go on with: ``epoch`` epochs done,
    and ``blob``, its weights, optimiser state and torch's random state (CPU, and the GPU's
    when it trained on one) as :func:`torch.save` bytes. Plain bytes, so a farm job hands it to
    the next through Ray's object store, whichever nodes they run on."""

    epoch: int
    blob: bytes


def _save(model: nn.Module, opt: torch.optim.Optimizer, epoch: int,
          device: torch.device) -> AdversaryState:  # fmt: skip
    buf = io.BytesIO()
    rng = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":  # mirror() flips its coins on the batch's device
        rng["cuda"] = torch.cuda.get_rng_state(device)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng}, buf)
    return AdversaryState(epoch, buf.getvalue())


def _restore(state: AdversaryState, model: nn.Module, opt: torch.optim.Optimizer,
             device: torch.device) -> None:  # fmt: skip
    saved = torch.load(io.BytesIO(state.blob), map_location=device, weights_only=True)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    torch.set_rng_state(saved["rng"]["cpu"].cpu())
    if device.type == "cuda" and "cuda" in saved["rng"]:
        torch.cuda.set_rng_state(saved["rng"]["cuda"].cpu(), device)


def _fit_privacy(
    data: StudyData,
    encoder: nn.Module,
    model_name: str,
    num_classes: int,
    cfg: TrainConfig,
    epochs: int,
    device: torch.device,
    pretrained: str | None,
    until: int,
    state: AdversaryState | None,
    **model_kw: Any,
) -> tuple[nn.Module, AdversaryState, list[float]]:
    """A privacy model trained on the frames of the (frozen) ``encoder``'s output on the train
    split, per-frame CE, cfg's optimiser and an lr schedule of ``epochs`` epochs: fresh (or
    ``state``'s, which goes on from its ``epoch``) up to epoch ``until``. Returned in eval mode,
    with its state at ``until``: going on from it trains exactly as one unbroken run would, and
    the share of each epoch's training pass spent waiting for data (``Prefetch.wait_frac``)."""
    _check_epochs(epochs)
    if not (state.epoch if state else 0) < until <= epochs:
        raise ValueError(f"until: must be in ({state.epoch if state else 0}, {epochs}], "
                         f"got {until}")  # fmt: skip
    model = create_privacy_model(model_name, num_classes, pretrained=pretrained, **model_kw)
    model = prepare_module(model, device)
    opt = make_optimizer(model.parameters(), cfg)
    if state is not None:
        _restore(state, model, opt, device)
    waits = []
    for epoch in range(state.epoch if state else 0, until):
        set_lr(opt, epoch, cfg, epochs)
        model.train()
        feed = batches(data, "train", True, epoch, cfg.batch_size, device)
        for b in feed:
            privacy_step(model, opt, _encode(encoder, b.x, device), b.privacy, device)
        waits.append(feed.wait_frac)
    return model.eval(), _save(model, opt, until, device), waits


@torch.no_grad()
def _privacy_probs(
    data: StudyData, encoder: nn.Module, model: nn.Module, device: torch.device, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of ``model`` on every frame of the validation split's centre clips: probs
    (N_clips, T', K) float32 and labels (N_clips,), on the CPU."""
    probs, labels = [], []
    for b in batches(data, eval_split(data), False, 0, batch_size, device):
        with autocast(device):
            z = encoder(b.x)
            logits = model(frames(z))
        # frames() folds (B, T') into B * T' clip-major, so the view undoes it.
        probs.append(logits.float().softmax(1).view(len(b.x), z.shape[2], -1).cpu())
        labels.append(b.privacy.cpu())
    return torch.cat(probs), torch.cat(labels)


def _privacy_attack(
    data: StudyData,
    encoder: nn.Module,
    model_name: str,
    num_classes: int,
    cfg: TrainConfig,
    epochs: int,
    device: torch.device,
    pretrained: str | None,
    seed: int,
    until: int | None = None,
    state: AdversaryState | None = None,
    **model_kw: Any,
) -> tuple[nn.Module, dict[str, float], AdversaryState]:
    """:func:`privacy_rung`, also handing back the trained privacy model (eval mode)."""
    torch.manual_seed(seed)
    with frozen(encoder, device) as enc:
        model, saved, waits = _fit_privacy(data, enc, model_name, num_classes, cfg, epochs,
                                           device, pretrained, until or epochs, state,
                                           **model_kw)  # fmt: skip
        probs, labels = _privacy_probs(data, enc, model, device, cfg.batch_size)
    scores = {
        "privacy_acc": frame_accuracy(probs, labels),
        "privacy_acc_clip": clip_vote_accuracy(probs, labels),
        "privacy_nll": frame_nll(probs, labels),
        "epochs": saved.epoch,
        "data_wait_frac": statistics.mean(waits),
    }
    return model, scores, saved


def attack_privacy(
    data: StudyData,
    encoder: nn.Module,
    model_name: str,
    num_classes: int,
    cfg: TrainConfig,
    epochs: int,
    device: torch.device,
    pretrained: str | None = None,
    seed: int = 0,
    **model_kw: Any,
) -> dict[str, float]:
    """Train privacy model ``model_name`` (``num_classes`` privacy labels; ``model_kw`` go to
    it) from scratch, or from ``pretrained``, on the frozen ``encoder``'s output frames for
    ``epochs``; score it on the validation split's centre clips. Returns ``privacy_acc``
    (per-frame top-1, BDQ's), ``privacy_acc_clip`` (top-1 of the clip-averaged softmax), both in
    [0, 1], ``privacy_nll`` (:func:`frame_nll`), ``epochs`` and ``data_wait_frac`` (the mean
    over its epochs of the share of the training pass spent waiting for data)."""
    return _privacy_attack(data, encoder, model_name, num_classes, cfg, epochs, device,
                           pretrained, seed, **model_kw)[1]  # fmt: skip


def privacy_rung(
    data: StudyData,
    encoder: nn.Module,
    model_name: str,
    num_classes: int,
    cfg: TrainConfig,
    epochs: int,
    device: torch.device,
    until: int,
    state: AdversaryState | None = None,
    pretrained: str | None = None,
    seed: int = 0,
    **model_kw: Any,
) -> tuple[dict[str, float], AdversaryState]:
    """One rung of a raced :func:`attack_privacy` (:mod:`privar.farm.racing`): train privacy
    model ``model_name`` of an ``epochs``-epoch attack fresh (or on from ``state``) up to epoch
    ``until``, and score it as :func:`attack_privacy` does (``epochs`` in the scores: ``until``).
    Returns the scores and the state to go on from. Rungs chained up to ``epochs`` give
    :func:`attack_privacy`'s result (exactly, where torch is deterministic: on a CPU)."""
    _, scores, saved = _privacy_attack(data, encoder, model_name, num_classes, cfg, epochs,
                                       device, pretrained, seed, until, state,
                                       **model_kw)  # fmt: skip
    return scores, saved


def train_raw_judge(
    data: StudyData,
    model_name: str,
    num_classes: int,
    cfg: TrainConfig,
    epochs: int,
    device: torch.device,
    seed: int = 0,
    pretrained: str | None = None,
    **model_kw: Any,
) -> tuple[nn.Module, dict[str, float]]:
    """A privacy model trained on RAW frames (the identity encoder), to judge reconstructions in
    :func:`attack_reconstruction`; train it once per study and pass it to every attack. Returns
    the model, on ``device`` and frozen (eval mode, no gradients), and its scores: exactly
    :func:`attack_privacy` of the identity encoder with the same arguments, i.e. the
    no-privacy baseline's figures for this adversary."""
    model, scores, _ = _privacy_attack(data, nn.Identity(), model_name, num_classes, cfg,
                                       epochs, device, pretrained, seed, **model_kw)  # fmt: skip
    return model.requires_grad_(False), scores


# --- reconstruction --------------------------------------------------------------------------


def reconstruction_pair(x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The attacker's (input, target) from raw clips ``x`` (B, 3, T, H, W) and their encoding
    ``z`` (B, C, T', H', W'), T' <= T: ``(z at (T', H, W), x[:, :, T - T':])``.

    Time: output frame i of a frame-differencing encoder (BDQ, events: T' = T - 1) is made from
    raw frames i and i + 1 and is paired with the later one, i + 1, the newest frame it saw;
    in general the last T' raw frames are the target (T' = T: the whole clip).
    Space: the target always stays the raw frames at full resolution, so PSNR and SSIM compare
    like with like across encoders; an encoder that shrinks H, W has ``z`` up-sampled
    (trilinear, i.e. bilinear per frame, T' kept) for the UNet to start from."""
    t, tz = x.shape[2], z.shape[2]
    if tz > t:
        raise ValueError(f"encoder made {tz} frames from {t}: cannot align them with the clip")
    if z.shape[-2:] != x.shape[-2:]:
        z = F.interpolate(z.float(), size=(tz, *x.shape[-2:]), mode="trilinear",
                          align_corners=False)  # fmt: skip
    return z, x[:, :, t - tz :]


def attack_reconstruction(
    data: StudyData,
    encoder: nn.Module,
    recon_name: str,
    cfg: TrainConfig,
    epochs: int,
    device: torch.device,
    judge: nn.Module | None = None,
    seed: int = 0,
    **model_kw: Any,
) -> dict[str, float]:
    """Train reconstruction model ``recon_name`` (e.g. ``unet3d``; ``model_kw`` go to it) with
    an L1 loss to map the frozen ``encoder``'s output back to the raw frames
    (:func:`reconstruction_pair` says which), on the train split for ``epochs``. On the
    validation split's centre clips returns ``recon_psnr`` (dB, per frame, capped at
    :data:`~privar.farm.metrics.PSNR_CAP_DB`), ``recon_ssim`` (in [-1, 1]), ``epochs``,
    ``data_wait_frac`` (as :func:`attack_privacy`'s) and, with a
    ``judge`` (a privacy model trained on raw frames, :func:`train_raw_judge`),
    ``recon_privacy_acc``: its per-frame top-1 on the reconstructions; well above chance means
    the reconstruction brings identity back."""
    _check_epochs(epochs)
    torch.manual_seed(seed)
    with frozen(encoder, device) as enc:
        # The UNet's input width is the encoder's output channels: ask the encoder.
        probe = torch.zeros(1, 3, data.spec.num_frames, *data.spec.size, device=device)
        in_channels = _encode(enc, probe, device).shape[1]
        model = create_reconstruction_model(recon_name, in_channels=in_channels, **model_kw)
        model = prepare_module(model, device)
        opt = make_optimizer(model.parameters(), cfg)
        waits = []
        for epoch in range(epochs):
            set_lr(opt, epoch, cfg, epochs)
            model.train()
            feed = batches(data, "train", True, epoch, cfg.batch_size, device)
            for b in feed:
                z, target = reconstruction_pair(b.x, _encode(enc, b.x, device))
                with autocast(device):
                    pred = model(z)
                # L1 rather than MSE: the usual choice for image restoration, less blurry.
                loss = F.l1_loss(pred.float(), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            waits.append(feed.wait_frac)
        model.eval()
        with frozen(judge, device) if judge is not None else nullcontext() as jud:
            scores = _score_reconstruction(data, enc, model, jud, device, cfg.batch_size)
    return {**scores, "epochs": epochs, "data_wait_frac": statistics.mean(waits)}


@torch.no_grad()
def _score_reconstruction(
    data: StudyData,
    encoder: nn.Module,
    model: nn.Module,
    judge: nn.Module | None,
    device: torch.device,
    batch_size: int,
) -> dict[str, float]:
    """PSNR, SSIM (and the judge's per-frame accuracy) on the validation split, averaged over
    all frames: each batch's frame averages weighted by its frame count."""
    sums = {"recon_psnr": 0.0, "recon_ssim": 0.0, "recon_privacy_acc": 0.0}
    count = 0
    for b in batches(data, eval_split(data), False, 0, batch_size, device):
        z, target = reconstruction_pair(b.x, _encode(encoder, b.x, device))
        with autocast(device):
            pred = model(z).float().clamp(0, 1)
        n = target.shape[0] * target.shape[2]
        sums["recon_psnr"] += psnr(pred, target) * n
        sums["recon_ssim"] += ssim(pred, target) * n
        if judge is not None:
            with autocast(device):
                hit = judge(frames(pred)).argmax(1) == frame_labels(b.privacy, pred.shape[2])
            sums["recon_privacy_acc"] += float(hit.sum())
        count += n
    if judge is None:
        del sums["recon_privacy_acc"]
    return {k: v / count for k, v in sums.items()}


# --- action ----------------------------------------------------------------------------------


def fresh_action(
    data: StudyData,
    encoder: nn.Module,
    model_name: str,
    num_classes: int,
    cfg: TrainConfig,
    epochs: int,
    device: torch.device,
    pretrained: str | None = None,
    seed: int = 0,
    **model_kw: Any,
) -> dict[str, float]:
    """Train a fresh action model ``model_name`` (from scratch, or ``pretrained``) on the frozen
    ``encoder``'s output for ``epochs`` with :func:`~privar.train.classifier.train_classifier`.
    Returns ``action_acc_fresh`` (per clip, centre clip, validation split, in [0, 1]),
    ``epochs`` and ``data_wait_frac`` (as :func:`attack_privacy`'s)."""
    _check_epochs(epochs)
    torch.manual_seed(seed)
    model = create_action_model(model_name, num_classes, pretrained=pretrained, **model_kw)
    waits: list[float] = []
    with frozen(encoder, device) as enc:
        metrics = train_classifier(
            data, enc, model, cfg, device, epochs=epochs,
            report=lambda _, m: waits.append(m["data_wait_frac"]))  # fmt: skip
    return {"action_acc_fresh": metrics["action_acc"], "epochs": epochs,
            "data_wait_frac": statistics.mean(waits)}  # fmt: skip


__all__ = [
    "AdversaryState",
    "attack_privacy",
    "attack_reconstruction",
    "clip_vote_accuracy",
    "frame_accuracy",
    "frame_nll",
    "fresh_action",
    "frozen",
    "privacy_rung",
    "reconstruction_pair",
    "train_raw_judge",
]
