"""STAT's spatial-temporal attention transfer (STAT, Sec. 3.1-3.3, Eq. 1-4).

Spatial attention map of one block output ``A`` with ``C`` channels (Eq. 1)::

    F_{x,y}(A) = sum_{i=1..C} |A_{x,y,i}|^p            STAT: p = 1 (Zagoruyko & Komodakis: p = 2)

Spatial attention transfer over the ResNet block outputs ``Res`` (Eq. 2, STAT uses P = 2)::

    L_SAT = sum_{i in Res} w_i * || Q_S^i / ||Q_S^i||_2 - Q_T^i / ||Q_T^i||_2 ||_P,
    Q^i = vec(F(A^i))

Temporal attention transfer over the temporal attention module's FC outputs ``fc`` (Eq. 3)::

    L_TAT = sum_{j in fc} w_j * || Q_S^j / ||Q_S^j||_2 - Q_T^j / ||Q_T^j||_2 ||_P,
    Q^j = the j-th FC layer's output

Total (Eq. 4): ``L = W_CE * L_CE + W_SAT * L_SAT + W_TAT * L_TAT``.

Readings where the paper is not explicit:

- Eq. (2) and (3) have no per-block weights; the ``w_i`` / ``w_j`` are the "Res1-Res2-Res3-Res4"
  and "FC1-FC2" weights of Table 1 and Sec. 3.3.2 (fixed or rolling, ``rolling_weights``).
- The norm is the P-norm itself (not its P-th power), per sample, then averaged over the batch.
  The text's "we square the subtracted data" is read as the squares inside the 2-norm.
- A 3D backbone's ``(N, C, T, H, W)`` output gives one map over all ``T*H*W`` positions.
- Teacher (HR input) and student (12x16 input) maps differ in size; the paper does not say how
  they are compared. Here the teacher's raw map ``F`` is resized to the student's ``(H, W)``
  with bilinear interpolation with anti-aliasing (PIL's bilinear filter: a proper low-pass when
  shrinking, plain bilinear when growing), then vectorised and L2-normalised.
- The teacher side is detached by default (a fixed, pre-trained T-Net, as in the unsupervised
  stage of Sec. 3.3.1); ``detach_teacher=False`` lets gradients reach it.

Precision: maps, norms and differences run in float32 (float64 stays float64). ``sum_c |A|^p``
over hundreds of channels and the squares of the 2-norms overflow float16 (max 65504) on
ordinary activations, and the difference of two unit vectors loses the bits that matter.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "rolling_weights",
    "sat_loss",
    "spatial_attention_map",
    "stat_total",
    "tat_loss",
]


def _upcast(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_positive(value: float, name: str) -> float:
    value = float(value)
    if not (value > 0):  # also rejects NaN
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _check_weights(weights: Sequence[float], count: int, name: str) -> list[float]:
    """Finite, non-negative floats, exactly ``count`` of them."""
    out = [float(w) for w in weights]
    if len(out) != count:
        raise ValueError(f"{name}: expected {count} weights (one per layer), got {len(out)}")
    bad = [w for w in out if not math.isfinite(w) or w < 0]
    if bad:
        raise ValueError(f"{name}: weights must be finite and >= 0, got {out}")
    return out


def _raw_map(activation: Tensor, p: float) -> Tensor:
    """Eq. (1) before vectorising: ``(N, C, H, W) -> (N, H, W)``, ``(N, C, T, H, W) ->
    (N, T, H, W)``."""
    if activation.dim() not in (4, 5):
        raise ValueError(
            "spatial attention: expected an activation (N, C, H, W) or (N, C, T, H, W), got "
            f"shape {tuple(activation.shape)}"
        )
    if not torch.is_floating_point(activation):
        raise ValueError(f"spatial attention: expected a float activation, got {activation.dtype}")
    a = _upcast(activation).abs()
    return (a if p == 1 else a.pow(p)).sum(dim=1)


def _resize(raw: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a raw map's last two (spatial) axes to ``size``; other axes untouched."""
    if tuple(raw.shape[-2:]) == tuple(size):
        return raw
    lead = raw.shape[:-2]
    flat = raw.reshape(-1, 1, *raw.shape[-2:])
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.reshape(*lead, *size)


def _unit(raw: Tensor) -> Tensor:
    """``vec`` then L2 normalisation per sample: ``(N, ...) -> (N, D)``, rows of norm 1 (a
    zero row stays zero)."""
    return F.normalize(raw.reshape(raw.shape[0], -1), p=2.0, dim=1, eps=1e-12)


def spatial_attention_map(
    activation: Tensor, p: float = 1.0, size: tuple[int, int] | None = None
) -> Tensor:
    """STAT's spatial attention map ``Q / ||Q||_2`` with ``Q = vec(F(A))`` (Eq. 1 and 2).

    Args:
        activation: one block output, ``(N, C, H, W)`` (2D backbone; ``N`` may be ``B*K``
            frames) or ``(N, C, T, H, W)`` (3D backbone).
        p: exponent in ``F = sum_c |A_c|^p``. STAT's Eq. (1) is ``p = 1``; Zagoruyko &
            Komodakis's attention transfer uses ``p = 2``.
        size: optional ``(H', W')`` to resize the raw map to (anti-aliased bilinear) before
            vectorising, as ``sat_loss`` does with the teacher's map.

    Returns:
        ``(N, H*W)`` or ``(N, T*H*W)`` (``H', W'`` if resized), float32 (float64 for float64
        input), each row of unit L2 norm (all-zero activations give a zero row). Invariant to
        scaling the activation by any non-zero constant.
    """
    raw = _raw_map(activation, _check_positive(p, "spatial_attention_map: p"))
    if size is not None:
        raw = _resize(raw, (int(size[0]), int(size[1])))
    return _unit(raw)


def _distance(student: Tensor, teacher: Tensor, p: float) -> Tensor:
    """Batch mean of the per-sample P-norm of the difference of two ``(N, D)`` unit maps."""
    return torch.linalg.vector_norm(student - teacher, ord=p, dim=1).mean()


def sat_loss(
    student_blocks: Sequence[Tensor],
    teacher_blocks: Sequence[Tensor],
    weights: Sequence[float],
    p: float = 2.0,
    *,
    map_power: float = 1.0,
    detach_teacher: bool = True,
) -> Tensor:
    """Spatial attention transfer, STAT Eq. (2) with per-block weights.

    ``L_SAT = sum_i w_i * mean_n || Q_S^i/||Q_S^i||_2 - Q_T^i/||Q_T^i||_2 ||_p``.

    Args:
        student_blocks: block outputs of the student, e.g. ResNet ``layer1..layer4``; each
            ``(N, C_i, H_i, W_i)`` or ``(N, C_i, T, H_i, W_i)``.
        teacher_blocks: the teacher's outputs of the same blocks: same ``N`` (and ``T``) and
            number of dimensions; channels and spatial size may differ. A teacher map whose
            ``(H, W)`` differs from the student's is resized to the student's (anti-aliased
            bilinear) before normalisation.
        weights: one weight ``>= 0`` per block (Table 1, or ``rolling_weights``).
        p: the norm type ``P`` of Eq. (2) (STAT: 2); ``>= 1`` or ``math.inf``.
        map_power: the exponent of Eq. (1) (STAT: 1).
        detach_teacher: stop gradients into the teacher (default).

    Returns:
        A 0-dim float32 tensor (float64 for float64 input), ``>= 0``.
    """
    n_blocks = len(student_blocks)
    if n_blocks == 0 or n_blocks != len(teacher_blocks):
        raise ValueError(
            "sat_loss: need the same, non-zero number of student and teacher blocks, got "
            f"{n_blocks} and {len(teacher_blocks)}"
        )
    ws = _check_weights(weights, n_blocks, "sat_loss")
    p = _check_norm(p, "sat_loss")
    map_power = _check_positive(map_power, "sat_loss: map_power")
    total: Tensor | None = None
    for i, (s_act, t_act, w) in enumerate(zip(student_blocks, teacher_blocks, ws, strict=True)):
        if detach_teacher:
            t_act = t_act.detach()
        s_raw, t_raw = _raw_map(s_act, map_power), _raw_map(t_act, map_power)
        if s_raw.dim() != t_raw.dim() or s_raw.shape[:-2] != t_raw.shape[:-2]:
            raise ValueError(
                f"sat_loss: block {i}: student {tuple(s_act.shape)} and teacher "
                f"{tuple(t_act.shape)} must agree in batch size (and frames T); only channels "
                "and H, W may differ"
            )
        t_raw = _resize(t_raw, tuple(s_raw.shape[-2:]))
        term = w * _distance(_unit(s_raw), _unit(t_raw.to(s_raw.dtype)), p)
        total = term if total is None else total + term
    assert total is not None
    return total


def tat_loss(
    student_temporal: Tensor | Sequence[Tensor],
    teacher_temporal: Tensor | Sequence[Tensor],
    weights: Sequence[float] | None = None,
    p: float = 2.0,
    *,
    detach_teacher: bool = True,
) -> Tensor:
    """Temporal attention transfer, STAT Eq. (3): the distance of the TAM's FC outputs.

    ``L_TAT = sum_j w_j * mean_n || Q_S^j/||Q_S^j||_2 - Q_T^j/||Q_T^j||_2 ||_p``: per sample,
    each FC output is L2-normalised and the P-norm of the student-teacher difference taken,
    exactly as SAT (the paper: "we use the same method as spatial attention loss").

    Args:
        student_temporal: one FC output ``(B, K)`` (the ``K``-way layer) or a list of them, one
            per FC layer of the temporal attention module (STAT: the 64-d hidden layer and the
            ``K``-d layer), each ``(B, D_j)``; trailing axes past the first are flattened.
        teacher_temporal: the teacher's, same shapes.
        weights: one ``>= 0`` per FC layer (Table 1 "FC1-FC2", or ``rolling_weights``); default
            all 1, the unweighted sum of Eq. (3).
        p: the norm type ``P`` (STAT: 2); ``>= 1`` or ``math.inf``.
        detach_teacher: stop gradients into the teacher (default).

    Returns:
        A 0-dim float32 tensor (float64 for float64 input), ``>= 0``; invariant to positive
        scaling of either side's FC outputs.
    """
    s_list = [student_temporal] if isinstance(student_temporal, Tensor) else list(student_temporal)
    t_list = [teacher_temporal] if isinstance(teacher_temporal, Tensor) else list(teacher_temporal)
    if not s_list or len(s_list) != len(t_list):
        raise ValueError(
            "tat_loss: need the same, non-zero number of student and teacher FC outputs, got "
            f"{len(s_list)} and {len(t_list)}"
        )
    ws = _check_weights(
        [1.0] * len(s_list) if weights is None else weights, len(s_list), "tat_loss"
    )
    p = _check_norm(p, "tat_loss")
    total: Tensor | None = None
    for j, (s, t, w) in enumerate(zip(s_list, t_list, ws, strict=True)):
        if s.dim() < 2 or s.shape != t.shape or s.shape[0] == 0:
            raise ValueError(
                f"tat_loss: FC output {j}: student {tuple(s.shape)} and teacher {tuple(t.shape)} "
                "must both be (B, D) of the same shape"
            )
        if detach_teacher:
            t = t.detach()
        s32, t32 = _upcast(s), _upcast(t)
        term = w * _distance(_unit(s32), _unit(t32.to(s32.dtype)), p)
        total = term if total is None else total + term
    assert total is not None
    return total


def _check_norm(p: float, name: str) -> float:
    p = float(p)
    if not (p >= 1):  # math.inf passes, NaN fails
        raise ValueError(f"{name}: the norm type p must be >= 1 (or math.inf), got {p}")
    return p


def stat_total(
    ce: Tensor, sat: Tensor, tat: Tensor, w_ce: float, w_sat: float, w_tat: float
) -> Tensor:
    """STAT Eq. (4): ``W_CE * L_CE + W_SAT * L_SAT + W_TAT * L_TAT``.

    Table 1's best fixed setting is ``1/3, 1/3, 1/3``; the unsupervised pre-stage (Sec. 3.3.1)
    uses SAT and TAT only (``w_ce = 0``). Weights must be finite and ``>= 0``.
    """
    w_ce, w_sat, w_tat = _check_weights((w_ce, w_sat, w_tat), 3, "stat_total")
    return w_ce * ce + w_sat * sat + w_tat * tat


def rolling_weights(
    base_weights: Sequence[float], epoch: int, every: int, *, cycle: bool = True
) -> list[float]:
    """STAT's rolling weights (Sec. 3.3.2): the per-layer weights of ``epoch``.

    The paper "alternately use[s] (40%, 30%, 20%, 10%), (30%, 40%, 20%, 10%), (20%, 30%, 40%,
    10%), and (10%, 20%, 30%, 40%) in spatial part and alternately use (66%, 33%) and
    (33%, 66%) in temporal part in every 10 epochs", after finding the fixed, depth-increasing
    10-20-30-40 unsatisfactory. That is not a cyclic rotation (rotating 40-30-20-10 by one gives
    10-40-30-20). The rule that produces exactly those stages: with the weights sorted from
    largest to smallest, ``d_0 >= d_1 >= ... >= d_{n-1}``, stage ``k`` (``k = 0..n-1``) gives

        blocks ``0..k``:   ``d_k, d_{k-1}, ..., d_0``   (rising to the largest, at block ``k``)
        blocks ``k+1..``:  ``d_{k+1}, ..., d_{n-1}``    (falling with depth)

    so the largest weight walks from the shallowest layer (stage 0: fully decreasing) to the
    deepest (stage ``n-1``: fully increasing, the paper's 10-20-30-40). Stage ``k`` is used for
    epochs ``k*every .. (k+1)*every - 1``; after the last stage the schedule starts over
    ("alternately"), or with ``cycle=False`` stays on the last stage.

    Only the values of ``base_weights`` matter, not their order: the values are returned
    permuted, never renormalised. Examples (``every=2``, base ``[1, 2, 3, 4]``): epochs 0-1
    ``[4, 3, 2, 1]``, 2-3 ``[3, 4, 2, 1]``, 4-5 ``[2, 3, 4, 1]``, 6-7 ``[1, 2, 3, 4]``, 8-9
    ``[4, 3, 2, 1]`` again. Two layers: ``[2, 1]``, ``[1, 2]``, ``[2, 1]``, ...

    Args:
        base_weights: one weight ``>= 0`` per layer (at least one).
        epoch: 0-based epoch, ``>= 0``.
        every: epochs per stage, ``>= 1`` (STAT: 10).
        cycle: start over after the last stage (default) or stay on it.
    """
    base = [float(w) for w in base_weights]
    if not base:
        raise ValueError("rolling_weights: base_weights is empty")
    if any(not math.isfinite(w) or w < 0 for w in base):
        raise ValueError(f"rolling_weights: weights must be finite and >= 0, got {base}")
    for name, value, low in (("epoch", epoch, 0), ("every", every, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"rolling_weights: {name} must be an int >= {low}, got {value!r}")
    n = len(base)
    stage = int(epoch) // int(every)
    k = stage % n if cycle else min(stage, n - 1)
    desc = sorted(base, reverse=True)
    return desc[k::-1] + desc[k + 1 :]
