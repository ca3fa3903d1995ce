"""Encoders: one contract test over the registry, BDQ's reference exactness, per-clip
independence, the event simulator, and what the low-resolution encoders remove."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from privar.encoders import create_encoder, list_encoders
from privar.encoders.bdq import BDQ, SIGMA_MIN
from privar.errors import UserError

B, C, T, H, W = 2, 3, 8, 32, 32


def _clip(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# --- (a) the contract, for every registered encoder --------------------------------------------


@pytest.mark.parametrize("name", list_encoders())
def test_encoder_contract(name: str) -> None:
    torch.manual_seed(0)
    enc = create_encoder(name)
    x = _clip(B, C, T, H, W).requires_grad_(True)
    out = enc(x)

    assert out.shape == (B, C, enc.out_frames(T), H, W)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()

    params = [p for p in enc.parameters() if p.requires_grad]
    assert enc.param_count() == sum(p.numel() for p in params)

    if enc.differentiable:
        out.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    else:
        # Piecewise constant in the input: no gradient to it, but a model after it still trains.
        assert not out.requires_grad
        head = torch.nn.Parameter(torch.ones(()))
        (head * out).sum().backward()
        assert head.grad is not None and torch.isfinite(head.grad)
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all()

    # Runs under autocast too (CPU bfloat16 here; the same code path as CUDA float16).
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = enc(x.detach())
    assert low.shape == out.shape and torch.isfinite(low.float()).all()


def test_unknown_names_and_presets_are_user_errors() -> None:
    with pytest.raises(UserError, match="known: bdq"):
        create_encoder("nope")
    with pytest.raises(UserError, match="unknown preset"):
        create_encoder("bdq", preset="paper")
    with pytest.raises(UserError, match="takes no other parameters"):
        create_encoder("bdq", preset="reference", levels=8)


# --- (b) BDQ reference preset: exactly the authors' release -------------------------------------


def _numpy_bdq_reference(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The release's formulas, written out independently in float64 numpy with explicit loops."""
    x = x.astype(np.float64)
    offsets = np.arange(-2, 3, dtype=np.float64)
    g = np.exp(-(offsets**2) / (2 * 3.0**2))
    g /= g.sum()
    kernel = np.outer(g, g)
    b, c, t, h, w = x.shape
    padded = np.zeros((b, c, t, h + 4, w + 4))
    padded[..., 2:-2, 2:-2] = x
    blurred = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            blurred[..., i, j] = (padded[..., i : i + 5, j : j + 5] * kernel).sum(axis=(-2, -1))
    d = np.empty((b, c, t - 1, h, w))
    for k in range(1, t):
        d[:, :, k - 1] = blurred[:, :, k] - blurred[:, :, k - 1]
    m, big_m = d.min(), d.max()  # over the whole batch
    xq = (d - m) / ((big_m - m) + 1e-4) * 15
    steps = np.sort(np.clip(thresholds.astype(np.float64), 0, 15))
    y = np.zeros_like(xq)
    for step in steps:
        y += 1 / (1 + np.exp(-5 * (xq - step)))
    scale = max((big_m - m) / 15, 1e-4)
    return y * scale + m


def test_bdq_reference_matches_an_independent_reimplementation() -> None:
    enc = create_encoder("bdq", preset="reference")
    assert enc.param_count() == 15  # the release freezes sigma; only the thresholds train
    x = _clip(2, 3, 4, 9, 11)
    out = enc(x)
    expected = _numpy_bdq_reference(x.numpy(), np.arange(15) + 0.5)
    assert out.dtype == torch.float32
    assert np.abs(out.detach().numpy() - expected).max() < 1e-6

    # Thresholds an optimizer moved out of order and out of range are clamped and sorted first,
    # in the parameter itself, as in the release.
    moved = torch.tensor(
        [20.0, 3.2, -1.0, 0.7, 14.0, 2.0, 5.5, 5.0, 9.9, 8.1, 6.0, 7.3, 11, 13, 12]
    )
    with torch.no_grad():
        enc.thresholds.copy_(moved)
    out = enc(x)
    assert torch.equal(enc.thresholds.detach(), moved.clamp(0, 15).sort().values)
    expected = _numpy_bdq_reference(x.numpy(), moved.numpy())
    assert np.abs(out.detach().numpy() - expected).max() < 1e-6


# sum_n sigmoid(5 (x' - b_n)) for b_n = 0.5 .. 14.5: the quantizer's output at x'.
def _staircase(xq: float) -> float:
    return sum(1 / (1 + math.exp(-5 * (xq - (n + 0.5)))) for n in range(15))


# The centre tap of the 5x5 kernel at sigma = 3: (1 / sum_i exp(-i^2 / 18))^2.
K_CENTRE = (1 / sum(math.exp(-(i**2) / 18) for i in range(-2, 3))) ** 2


def test_bdq_reference_closed_forms() -> None:
    enc = create_encoder("bdq", preset="reference")

    # A static scene: d = 0 everywhere, M - m = 0, so x' = 0, s = 1e-4 and every output pixel is
    # 1e-4 * sum_n sigmoid(-5 b_n) (about 7.6e-6), whatever the image.
    static = _clip(1, 3, 1, 6, 7).expand(1, 3, 5, 6, 7)
    out = enc(static)
    assert out.shape == (1, 3, 4, 6, 7)
    assert torch.allclose(out, torch.full_like(out, 1e-4 * _staircase(0.0)), rtol=0, atol=1e-9)

    # A 1x1-pixel ramp, frames 0.25 + 0.125 t: the zero-padded blur of a single pixel is the
    # centre tap times it, so d = K_CENTRE * 0.125 in every frame (on a bigger flat frame the zero
    # padding would make d vary near the borders). M - m = 0 again: out = m + 1e-4 * staircase(0).
    ramp = (0.25 + 0.125 * torch.arange(6.0)).view(1, 1, 6, 1, 1).expand(1, 3, 6, 1, 1)
    out = enc(ramp)
    expected = K_CENTRE * 0.125 + 1e-4 * _staircase(0.0)
    assert torch.allclose(out, torch.full_like(out, expected), rtol=0, atol=1e-7)

    # A 1x1-pixel step 0 -> 0.8 -> 0.8: d = (K v, 0), m = 0, M = K v, s = K v / 15.
    step = torch.tensor([0.0, 0.8, 0.8]).view(1, 1, 3, 1, 1).expand(1, 3, 3, 1, 1)
    out = enc(step)[0, 0, :, 0, 0]
    kv = K_CENTRE * 0.8
    first = _staircase(kv / (kv + 1e-4) * 15) * kv / 15
    second = _staircase(0.0) * kv / 15
    assert out.tolist() == pytest.approx([first, second], abs=1e-7)


def test_bdq_learnable_gradients_reach_sigma_and_every_threshold() -> None:
    enc = create_encoder("bdq")
    assert isinstance(enc, BDQ) and enc.param_count() == 16
    x = _clip(2, 3, 4, 16, 16)
    weights = _clip(2, 3, 3, 16, 16, seed=1) - 0.5
    (enc(x) * weights).sum().backward()
    assert enc.sigma.grad is not None and enc.sigma.grad.abs() > 0
    assert enc.thresholds.grad is not None and (enc.thresholds.grad.abs() > 0).all()

    # And it is the right gradient: central differences in float64.
    enc = create_encoder("bdq", sigma=2.0).double()
    x64, w64 = x.double(), weights.double()
    (enc(x64) * w64).sum().backward()

    def loss_at(sigma: float) -> float:
        with torch.no_grad():
            enc.sigma.fill_(sigma)
            return float((enc(x64) * w64).sum())

    numeric = (loss_at(2.0 + 1e-5) - loss_at(2.0 - 1e-5)) / 2e-5
    assert float(enc.sigma.grad) == pytest.approx(numeric, rel=1e-5)


def test_bdq_sigma_pushed_below_its_floor_comes_back_with_a_gradient() -> None:
    # A step (or Adam's momentum) that drives a learned sigma negative must not leave it dead
    # behind a clamp: the next forward projects it onto SIGMA_MIN, where the gradient lives.
    enc = create_encoder("bdq")
    with torch.no_grad():
        enc.sigma.fill_(-2.0)
    x, weights = _clip(2, 3, 4, 16, 16), _clip(2, 3, 3, 16, 16, seed=1) - 0.5
    (enc(x) * weights).sum().backward()
    assert float(enc.sigma.detach()) == pytest.approx(SIGMA_MIN)
    assert enc.sigma.grad is not None and enc.sigma.grad.abs() > 0
    with pytest.raises(ValueError, match="learned sigma"):
        create_encoder("bdq", sigma=SIGMA_MIN / 2)
    assert float(create_encoder("bdq", sigma=0.1, learn_sigma=False).sigma) == pytest.approx(0.1)


# --- (c) a clip's encoding does not depend on the rest of its batch ---------------------------


def test_bdq_default_encodes_each_clip_on_its_own() -> None:
    enc = create_encoder("bdq")
    x = _clip(3, 3, 5, 12, 12)
    x[1] *= 0.2  # a dim clip beside bright ones: it would be squashed by batch-wide min/max
    batch = enc(x)
    for b in range(3):
        assert torch.allclose(batch[b : b + 1], enc(x[b : b + 1]), rtol=0, atol=1e-6)

    # The release normalises over the whole batch, so there the neighbours do matter.
    ref = create_encoder("bdq", preset="reference")
    assert not torch.allclose(ref(x)[1:2], ref(x[1:2]), rtol=0, atol=1e-4)


# --- (d) the event camera ---------------------------------------------------------------------


def test_events_fire_on_log_contrast_with_reference_reset() -> None:
    enc = create_encoder("events", threshold=0.2)
    # Pixel (0, 0) brightens by x1.5 (log 1.5 = 0.41 > 0.2: +1, reference reset), then twice by
    # x1.15 (0.14 < 0.2: nothing; then 0.28 above the reset reference: +1), then halves (-1).
    # Pixel (0, 1) stays put. Gray channels, so luma = the value.
    levels = [0.2, 0.3, 0.345, 0.39675, 0.2]
    x = torch.full((1, 3, 5, 1, 2), 0.5)
    x[0, :, :, 0, 0] = torch.tensor(levels)
    out = enc(x)
    assert out.shape == (1, 3, 4, 1, 2)
    assert out[0, :, :, 0, 0].tolist() == [[1.0, 0.0, 1.0, -1.0]] * 3
    assert out[0, :, :, 0, 1].tolist() == [[0.0] * 4] * 3
    # Without the reset-only-on-fire reference (plain frame differencing) frame 3 would be 0.
    assert math.log((1e-3 + levels[3]) / (1e-3 + levels[2])) < 0.2


# --- (e) the low-resolution encoders remove detail ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("elr", {}),
        ("elr", {"resolution": (6, 8), "blur_sigma": 1.5}),
        ("downsample", {"size": 7}),
        ("downsample", {"size": 14}),
        ("pixelate", {"block": 8}),
        ("blur", {"sigma": 2.0}),
    ],
)
def test_degradations_remove_detail_and_keep_flat_images(name: str, params: dict) -> None:
    enc = create_encoder(name, **params)
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    checker = ((yy + xx) % 2).float().expand(1, 3, 2, H, W)
    out = enc(checker)
    assert out.var() < 0.05 * checker.var()

    flat = torch.full((1, 3, 2, H, W), 0.37)
    assert torch.allclose(enc(flat), flat, rtol=0, atol=1e-6)


def test_elr_noise_is_always_on_and_stays_in_range() -> None:
    enc = create_encoder("elr", noise_std=0.05).eval()
    x = torch.full((1, 3, 2, H, W), 0.98)
    first, second = enc(x), enc(x)
    assert not torch.equal(first, second)
    assert first.min() >= 0 and first.max() <= 1
