"""BDQ's adversarial objectives (BDQ, Sec. 3.2, Eq. 1 and 2).

Training alternates two steps. With the privacy model P fixed, the encoder E and the action model
T minimise Eq. (1)::

    L(V, theta_E, theta_T) = XE(T(E(V)), L_action) - alpha * Entropy(P(E(V)))

(``adversarial_loss``); then, with E and T fixed, P minimises Eq. (2)::

    L(V, theta_P) = XE(P(E(V)), L_privacy)

(``privacy_loss``). Minimising ``-alpha * Entropy`` pushes P's prediction towards the uniform
distribution, whose entropy is ``max_entropy(num_classes) = log(num_classes)``.

Precision: softmax, log and cross-entropy run in float32 (float64 stays float64) even when the
logits come in float16/bfloat16 from autocast. ``p * log p`` summed over classes and averaged over
frames is the kind of reduction that half precision (8-10 mantissa bits) gets visibly wrong, and
``alpha * Entropy`` is subtracted from a cross-entropy of similar size. Results are float32 scalars.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["adversarial_loss", "entropy", "max_entropy", "privacy_loss"]


def _upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _rows(logits: Tensor, name: str) -> Tensor:
    """``(..., C)`` float logits -> ``(N, C)`` with one row per prediction."""
    if not torch.is_floating_point(logits):
        raise ValueError(f"{name}: expected floating-point logits, got dtype {logits.dtype}")
    if logits.dim() < 2:
        raise ValueError(
            f"{name}: expected logits of shape (N, C) or (B, T, C), got {tuple(logits.shape)}"
        )
    if logits.shape[-1] < 1 or logits.numel() == 0:
        raise ValueError(f"{name}: empty logits of shape {tuple(logits.shape)}")
    return logits.reshape(-1, logits.shape[-1])


def max_entropy(num_classes: int) -> float:
    """Entropy of the uniform distribution over ``num_classes`` classes: ``log(num_classes)``
    (natural log, nats). The value ``entropy`` reaches when the privacy model is fully confused."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
    return math.log(num_classes)


def entropy(logits: Tensor) -> Tensor:
    """Mean softmax entropy of a batch of predictions, in nats.

    ``H = mean_n ( -sum_c p_nc * log p_nc )`` with ``p_n = softmax(logits_n)``: the
    ``Entropy(P(E(V)))`` of BDQ Eq. (1).

    Args:
        logits: ``(N, C)`` pre-softmax scores, or ``(B, T, C)`` (any ``(..., C)``): every row
            along the last axis is one prediction and all rows are averaged with equal weight.
            For BDQ's per-frame 2D privacy model (``(B*T, P)`` or ``(B, T, P)``) this is the
            entropy averaged over all frames of all clips, i.e. the mean of per-frame entropies,
            not the entropy of the clip-averaged softmax (which is >= it, by concavity).

    Returns:
        A 0-dim float32 tensor (float64 for float64 input) in ``[0, log C]``.

    ``log p`` comes from ``log_softmax`` (max-subtracted), never ``log(softmax)``, so no
    ``log 0``: a class with vanishing probability contributes ``p * log p -> 0`` for finite logits.
    """
    logp = F.log_softmax(_upcast(_rows(logits, "entropy")), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1).mean()


def privacy_loss(privacy_logits: Tensor, privacy_labels: Tensor) -> Tensor:
    """BDQ Eq. (2): ``XE(P(E(V)), L_privacy)``, the privacy model's cross-entropy (mean).

    Args:
        privacy_logits: ``(N, P)`` with labels ``(N,)``; or per frame ``(B, T, P)`` with clip
            labels ``(B,)``, each clip's label applying to its ``T`` frames (mean over all
            ``B*T`` frames). Flatten ``(B*T, P)`` logits yourself only together with ``(B*T,)``
            labels: the frame order of a flat batch is the caller's to know.
        privacy_labels: int64 class indices.

    Returns:
        A 0-dim float32 tensor (float64 for float64 logits).
    """
    if privacy_logits.dim() == 3 and privacy_labels.dim() == 1:
        b, t, _ = privacy_logits.shape
        if privacy_labels.shape[0] != b:
            raise ValueError(
                f"privacy_loss: logits (B, T, P) = {tuple(privacy_logits.shape)} need labels of "
                f"shape ({b},), got {tuple(privacy_labels.shape)}"
            )
        privacy_labels = privacy_labels.repeat_interleave(t)
    rows = _rows(privacy_logits, "privacy_loss")
    return _cross_entropy(rows, privacy_labels, "privacy_loss")


def adversarial_loss(
    action_logits: Tensor, action_labels: Tensor, privacy_logits: Tensor, alpha: float
) -> Tensor:
    """BDQ Eq. (1): ``XE(T(E(V)), L_action) - alpha * Entropy(P(E(V)))``.

    The loss of the encoder-and-action-model step (privacy model fixed). Its gradient w.r.t. the
    privacy logits is ``-alpha * dEntropy/dlogits``, so a descent step moves the privacy
    prediction towards uniform; the gradient still flows into the privacy model's parameters,
    which the caller must hold fixed (not step, or freeze) in this step, as the paper does.

    Args:
        action_logits: ``(B, A)`` clip-level scores of the action model.
        action_labels: ``(B,)`` int64 action indices.
        privacy_logits: ``(B, P)``, or per frame ``(B*T, P)`` / ``(B, T, P)``: the entropy is
            averaged over all rows, i.e. over all frames of all clips (see ``entropy``).
        alpha: the adversarial weight, ``>= 0`` (BDQ uses 2 on SBU, 1 on KTH, 8 on IPN).

    Returns:
        A 0-dim float32 tensor; it can be negative (it is ``>= -alpha * log P``).
    """
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"adversarial_loss: alpha must be a finite number >= 0, got {alpha}")
    if action_logits.dim() != 2:
        raise ValueError(
            f"adversarial_loss: action_logits must be (B, A), got {tuple(action_logits.shape)}"
        )
    ce = _cross_entropy(_rows(action_logits, "adversarial_loss"), action_labels, "adversarial_loss")
    return ce - alpha * entropy(privacy_logits)


def _cross_entropy(rows: Tensor, labels: Tensor, name: str) -> Tensor:
    """Mean cross-entropy of ``(N, C)`` logits against ``(N,)`` labels, in float32 or wider."""
    if labels.dim() != 1 or labels.shape[0] != rows.shape[0]:
        raise ValueError(
            f"{name}: labels must have shape ({rows.shape[0]},) to match logits, "
            f"got {tuple(labels.shape)}"
        )
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"{name}: labels must be integer class indices, got dtype {labels.dtype}")
    return F.cross_entropy(_upcast(rows), labels.long())
