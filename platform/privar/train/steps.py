"""The steps themselves: device placement, precision, compilation, and BDQ's two updates.

Nothing here touches the data pipeline (no Ray, no decoder), so a benchmark on a machine with
only PyTorch times the very step the loops run (``benchmarks/gpu_step.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn as nn

from privar.models import preferred_memory_format
from privar.objectives import adversarial_loss, privacy_loss


def autocast(device: torch.device, amp: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU (no loss scaling needed, unlike fp16); full precision on CPU, or
    without ``amp`` (a benchmark's float32 baseline)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_module(module: nn.Module, device: torch.device) -> nn.Module:
    """Move to ``device``; channels-last on a GPU, where cuDNN's convolutions prefer it."""
    module = module.to(device)
    if device.type == "cuda":
        module = module.to(memory_format=preferred_memory_format(module))
    return module


Compiled = TypeVar("Compiled", bound=Callable)


def maybe_compile(fn: Compiled, device: torch.device, setting: str | bool) -> Compiled:
    """``torch.compile(fn)`` when ``setting`` (a :class:`TrainConfig` ``compile``) asks for it:
    ``True``, or ``"auto"`` on a GPU. A compiled module shares its parameters with ``fn``;
    loops call it for the steps and keep ``fn`` itself for optimisers and checkpoints, whose
    state-dict keys then stay those of the plain module."""
    if setting is True or (setting == "auto" and device.type == "cuda"):
        return torch.compile(fn)  # type: ignore[return-value]
    return fn


def to_input(clip: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, T, H, W) -> float32 in [0, 1] on ``device``: channels-last in memory on a
    GPU (the stream's clips already are, so nothing moves), contiguous on a CPU (where
    :class:`~privar.train.prefetch.Prefetch` has already made it so, in its thread). The layout
    is set on the uint8 clips, a quarter of the float bytes."""
    layout = torch.channels_last_3d if device.type == "cuda" else torch.contiguous_format
    x = clip.to(device, non_blocking=True).contiguous(memory_format=layout)
    return x.float().div_(255.0)


def frames(z: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) clips -> (B * T, C, H, W) frames for a 2-D privacy model."""
    b, c, t, h, w = z.shape
    return z.transpose(1, 2).reshape(b * t, c, h, w)


def frame_labels(labels: torch.Tensor, t: int) -> torch.Tensor:
    """(B,) clip labels -> (B * T,) frame labels, matching :func:`frames`."""
    return labels.repeat_interleave(t)


def privacy_step(privacy_model: nn.Module, opt: torch.optim.Optimizer, z: torch.Tensor,
                 privacy: torch.Tensor, device: torch.device,
                 amp: bool = True) -> float:  # fmt: skip
    """One step of the privacy model on encoded clips ``z`` (B, C, T', H', W'), detached: BDQ's
    step 2 (Eq. 2), and the privacy monitor of the schemes that have no adversary."""
    z = z.detach()
    with autocast(device, amp):
        loss = privacy_loss(privacy_model(frames(z)), frame_labels(privacy, z.shape[2]))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def adversarial_step(encoder: nn.Module, action_model: nn.Module, privacy_model: nn.Module,
                     opt_et: torch.optim.Optimizer, opt_p: torch.optim.Optimizer,
                     x: torch.Tensor, action: torch.Tensor, privacy: torch.Tensor, alpha: float,
                     device: torch.device, amp: bool = True,
                     privacy_steps: int = 1) -> float:  # fmt: skip
    """BDQ's two updates on one batch ``x`` (B, C, T, H, W) in [0, 1] with labels ``action``,
    ``privacy`` (B,), under :func:`autocast` (``amp``); returns step 1's loss.

    1. P fixed, E and T minimise CE(T(E(x)), action) - alpha * entropy(P(E(x)))   (Eq. 1)
    2. E and T fixed, P minimises CE on what the updated encoder shows it          (Eq. 2),
       ``privacy_steps`` times
    """
    # P's weights get no gradient in step 1, but the entropy's gradient flows through P into E.
    privacy_model.requires_grad_(False)
    with autocast(device, amp):
        z = encoder(x)
        loss = adversarial_loss(action_model(z), action, privacy_model(frames(z)), alpha)
    opt_et.zero_grad(set_to_none=True)
    loss.backward()
    opt_et.step()
    privacy_model.requires_grad_(True)

    with torch.no_grad(), autocast(device, amp):
        z = encoder(x)
    for _ in range(privacy_steps):
        privacy_step(privacy_model, opt_p, z, privacy, device, amp)
    return float(loss.detach())
