"""The adversary farm's training core on tiny real videos through the real data stream, and its
metrics against values computed by hand or by an independent implementation."""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from privar.data.dataset import StudyData
from privar.encoders import create_encoder
from privar.farm.attacks import (
    AdversaryState,
    attack_privacy,
    attack_reconstruction,
    clip_vote_accuracy,
    frame_accuracy,
    frame_nll,
    fresh_action,
    privacy_rung,
    reconstruction_pair,
    train_raw_judge,
)
from privar.farm.metrics import PSNR_CAP_DB, gaussian_window, psnr, ssim
from privar.study import TrainConfig
from privar.train.common import frame_labels, frames

CPU = torch.device("cpu")
CFG = TrainConfig(epochs=1, batch_size=4, optimizer="adam", lr=1e-2, schedule="none")
Judged = tuple[nn.Module, dict[str, float]]


class Zeros(nn.Module):
    """An encoder that hides everything."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class NormEncoder(nn.Module):
    """An encoder with a parameter and batch-norm statistics, which an attack must not move."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 3, 1)
        self.norm = nn.BatchNorm3d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core box two OpenMP threads spin against each other and
    the other jobs, and the baby UNet's steps take 40x longer (1.7 s against 40 ms)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data(colour_motion_data: StudyData) -> StudyData:
    return colour_motion_data


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _unchanged(module: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(before[k], v) for k, v in module.state_dict().items())


# --- metrics ---------------------------------------------------------------------------------


def test_psnr_by_hand() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 8, 8) * 0.8
    assert psnr(x + 0.1, x) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 -> 20 dB
    assert psnr(x, x) == PSNR_CAP_DB  # exact: capped, not inf
    # Per frame, then averaged: frames with MSE 0.01 and 0.0001 give (20 + 40) / 2.
    a = torch.zeros(2, 1, 4, 4)
    b = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.01)])
    assert psnr(b, a) == pytest.approx(30.0, abs=1e-4)
    assert psnr(2 * b, 2 * a, max_val=2.0) == pytest.approx(30.0, abs=1e-4)


def _ssim_reference(x: np.ndarray, y: np.ndarray, win: int, sigma: float) -> float:
    """SSIM of two (C, H, W) float64 frames by the formula, window position by window position,
    with explicit Gaussian weights: no convolution shared with the implementation."""
    r = np.arange(win) - (win - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - win + 1):
            for j in range(x.shape[2] - win + 1):
                a, b = x[c, i : i + win, j : j + win], y[c, i : i + win, j : j + win]
                ma, mb = (w * a).sum(), (w * b).sum()
                va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
                cov = (w * (a - ma) * (b - mb)).sum()
                values.append((2 * ma * mb + c1) * (2 * cov + c2)
                              / ((ma**2 + mb**2 + c1) * (va + vb + c2)))  # fmt: skip
    return float(np.mean(values))


def test_ssim_by_hand() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 2, 12, 16)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    # Flat frames: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1), whatever the window.
    a, b = torch.full((1, 3, 12, 16), 0.2), torch.full((1, 3, 12, 16), 0.6)
    assert ssim(a, b) == pytest.approx((2 * 0.12 + 1e-4) / (0.04 + 0.36 + 1e-4), rel=1e-5)
    # Noisy frames against the formula evaluated window by window (12x16: 2x6 positions of the
    # 11x11 window), the 5-D clip folded into its 4 frames.
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    fx = x.transpose(1, 2).reshape(4, 3, 12, 16).double().numpy()
    fy = y.transpose(1, 2).reshape(4, 3, 12, 16).double().numpy()
    ref = np.mean([_ssim_reference(fx[n], fy[n], 11, 1.5) for n in range(4)])
    assert ssim(y, x) == pytest.approx(ref, abs=1e-5)
    assert 0.1 < ref < 0.9  # a case that tells a wrong formula apart
    # A 6x7 frame clamps the window to 5x5 (the largest odd size that fits).
    x6, y6 = x[:1, :, 0, :6, :7], y[:1, :, 0, :6, :7]
    ref6 = _ssim_reference(y6[0].double().numpy(), x6[0].double().numpy(), 5, 1.5)
    assert ssim(y6, x6) == pytest.approx(ref6, abs=1e-5)
    assert gaussian_window(5, 1.5).sum().item() == pytest.approx(1.0)


# --- pure pieces of the attacks --------------------------------------------------------------


def test_clip_vote_against_frame_votes() -> None:
    # Clip 0: frames say 0, 0, 1 per frame, but frame 3 is very sure of 1: mean (0.4, 0.6) -> 1.
    # Clip 1: every frame says 1. Labels 0 and 1.
    probs = torch.tensor(
        [
            [[0.6, 0.4], [0.6, 0.4], [0.0, 1.0]],
            [[0.3, 0.7], [0.2, 0.8], [0.4, 0.6]],
        ]
    )
    labels = torch.tensor([0, 1])
    assert frame_accuracy(probs, labels) == pytest.approx(5 / 6)  # 2 of 3 + 3 of 3 frames
    assert clip_vote_accuracy(probs, labels) == pytest.approx(1 / 2)  # clip 0 voted 1: wrong
    labels = torch.tensor([1, 1])
    assert frame_accuracy(probs, labels) == pytest.approx(4 / 6)
    assert clip_vote_accuracy(probs, labels) == 1.0
    # The true class's -log p per frame, by hand: clip 0 (class 0) 0.6, 0.6 and 0, floored at
    # float32's smallest normal number; clip 1 (class 1) 0.7, 0.8, 0.6.
    tiny = torch.finfo(torch.float32).tiny
    nll = -sum(math.log(p) for p in (0.6, 0.6, tiny, 0.7, 0.8, 0.6)) / 6
    assert frame_nll(probs, torch.tensor([0, 1])) == pytest.approx(nll)
    labels = torch.tensor([0, 1])
    assert frame_nll(torch.full((2, 3, 2), 0.5), labels) == pytest.approx(math.log(2))


def test_reconstruction_pair_alignment() -> None:
    x = torch.arange(2 * 3 * 4 * 8 * 8, dtype=torch.float32).view(2, 3, 4, 8, 8)
    z = x[:, :, 1:] - x[:, :, :-1]  # a differencing encoder: T' = T - 1
    zin, target = reconstruction_pair(x, z)
    assert torch.equal(zin, z) and torch.equal(target, x[:, :, 1:])
    zin, target = reconstruction_pair(x, x)
    assert torch.equal(target, x)
    small = torch.ones(2, 3, 4, 2, 2)  # an encoder that shrinks H, W: z goes up to 8x8
    zin, target = reconstruction_pair(x, small)
    assert zin.shape == (2, 3, 4, 8, 8) and torch.equal(target, x)
    with pytest.raises(ValueError, match="5 frames from 4"):
        reconstruction_pair(x, torch.zeros(2, 3, 5, 8, 8))


# --- attacks on real videos ------------------------------------------------------------------


def test_identity_leaks_and_zeros_hide(data: StudyData) -> None:
    leak = attack_privacy(data, nn.Identity(), "baby2d", 2, CFG, 2, CPU)
    assert set(leak) == {"privacy_acc", "privacy_acc_clip", "privacy_nll", "epochs",
                         "data_wait_frac"}  # fmt: skip
    assert leak["epochs"] == 2
    assert leak["privacy_acc"] >= 0.9 and leak["privacy_acc_clip"] >= 0.9  # colour gives it away
    hidden = attack_privacy(data, Zeros(), "baby2d", 2, CFG, 1, CPU)
    # Every clip looks the same, so every frame position gets one guess for all 4 clips, 2 of
    # which are right: chance, exactly.
    assert hidden["privacy_acc"] == 0.5 and hidden["privacy_acc_clip"] == 0.5


@pytest.mark.parametrize("name", ["baby_vit", "baby_mlp"])
def test_adversaries_of_another_kind_read_identity_off_raw_frames(data: StudyData,
                                                                  name: str) -> None:  # fmt: skip
    """The farm's ViT and MLP-Mixer babies train through the same attack as the CNNs, and
    find the actor's colour on raw frames."""
    leak = attack_privacy(data, nn.Identity(), name, 2, CFG, 3, CPU)
    assert leak["privacy_acc"] >= 0.9 and leak["privacy_acc_clip"] >= 0.9


def test_attacks_leave_the_encoder_frozen_and_as_it_was(data: StudyData) -> None:
    torch.manual_seed(0)
    encoder = NormEncoder().train()
    encoder.conv.weight.requires_grad_(False)  # a flag the attack must give back as it found it
    before = _state(encoder)
    m = attack_privacy(data, encoder, "baby2d", 2, CFG, 1, CPU)
    assert 0 <= m["privacy_acc"] <= 1 and 0 <= m["privacy_acc_clip"] <= 1
    a = fresh_action(data, encoder, "baby3d", 2, CFG, 1, CPU)
    assert set(a) == {"action_acc_fresh", "epochs", "data_wait_frac"}
    assert 0 <= a["action_acc_fresh"] <= 1 and 0 <= a["data_wait_frac"] <= 1
    attack_reconstruction(data, encoder, "baby_unet3d", CFG, 1, CPU)
    assert _unchanged(encoder, before)  # running statistics included: it ran in eval mode
    assert encoder.training and encoder.norm.training
    assert [p.requires_grad for p in encoder.parameters()] == [False, True, True, True]

    bdq = create_encoder("bdq")  # T' = T - 1 all the way through
    before = _state(bdq)
    r = attack_reconstruction(data, bdq, "baby_unet3d", CFG, 1, CPU)
    assert set(r) == {"recon_psnr", "recon_ssim", "epochs", "data_wait_frac"}
    assert _unchanged(bdq, before)


@pytest.fixture(scope="module")
def judged(data: StudyData) -> Judged:
    """A baby2d judge trained on raw frames, and its scores."""
    return train_raw_judge(data, "baby2d", 2, CFG, 2, CPU)


def test_reconstruction_of_identity_beats_zeros(data: StudyData, judged: Judged) -> None:
    judge = judged[0]
    judge_state = _state(judge)
    cfg = TrainConfig(epochs=1, batch_size=2, optimizer="adam", lr=1e-2, schedule="none")
    clear = attack_reconstruction(data, nn.Identity(), "baby_unet3d", cfg, 8, CPU, judge=judge)
    dark = attack_reconstruction(data, Zeros(), "baby_unet3d", cfg, 8, CPU, judge=judge)
    for r in (clear, dark):
        assert set(r) == {"recon_psnr", "recon_ssim", "recon_privacy_acc", "epochs",
                          "data_wait_frac"}  # fmt: skip
        assert math.isfinite(r["recon_psnr"]) and 0 < r["recon_psnr"] < PSNR_CAP_DB
        assert -1 <= r["recon_ssim"] <= 1 and 0 <= r["recon_privacy_acc"] <= 1
    # Zeros leave the UNet the mean clip at best (~14 dB on this data). The identity it undoes
    # from the first step, through its global residual (~32 dB after 8 epochs; ~18 dB without
    # the residual, and a judge then read no identity off the reconstructions).
    assert clear["recon_psnr"] > 25.0 > dark["recon_psnr"]
    assert clear["recon_ssim"] > 0.9 > dark["recon_ssim"]
    # From zeros, every clip gets the same reconstruction: the judge can only guess.
    assert dark["recon_privacy_acc"] == 0.5
    assert clear["recon_privacy_acc"] >= 0.9  # raw frames back: the judge reads who it is
    assert _unchanged(judge, judge_state) and not judge.training


def test_seed_makes_an_attack_reproducible(data: StudyData) -> None:
    def run(seed: int) -> dict[str, float]:
        return attack_reconstruction(data, nn.Identity(), "baby_unet3d", CFG, 2, CPU, seed=seed)

    first = run(0)
    assert _scores(run(0)) == _scores(first)
    assert run(1)["recon_psnr"] != first["recon_psnr"]


def test_judge_is_the_raw_privacy_attack(data: StudyData, judged: Judged) -> None:
    judge, scores = judged
    assert set(scores) == {"privacy_acc", "privacy_acc_clip", "privacy_nll", "epochs",
                           "data_wait_frac"}  # fmt: skip
    assert not judge.training and not any(p.requires_grad for p in judge.parameters())
    hits = total = 0
    with torch.no_grad():
        for b in data.stream("val", train=False, batch_size=4):
            x = b.clip.float() / 255
            pred = judge(frames(x)).argmax(1)
            hits += int((pred == frame_labels(b.privacy, x.shape[2])).sum())
            total += len(pred)
    assert hits / total >= 0.9
    # Its scores are those frames', and those of the identity attack: same code, seed and data.
    assert scores["privacy_acc"] == pytest.approx(hits / total)
    raw = attack_privacy(data, nn.Identity(), "baby2d", 2, CFG, 2, CPU)
    assert _scores(raw) == _scores(scores)


def _scores(metrics: dict[str, float]) -> dict[str, float]:
    """An attack's figures without its wait for data, which is timing, not training."""
    return {k: v for k, v in metrics.items() if k != "data_wait_frac"}


def _weights(state: AdversaryState) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(state.blob), weights_only=True)["model"]


@pytest.mark.parametrize("name", ["baby2d", "baby_vit"])
def test_rungs_chained_train_exactly_as_one_attack(data: StudyData, name: str) -> None:
    """A raced adversary goes on from its state (weights, Adam's moments, the random state
    that picks the mirrored clips) on the lr schedule of the whole attack: its weights after
    rungs of 1 and 2 epochs are those of 3 epochs in one go, and so are its scores."""
    cfg = dataclasses.replace(CFG, schedule="cosine")
    whole, whole_state = privacy_rung(data, nn.Identity(), name, 2, cfg, 3, CPU, until=3, seed=5)
    first, state = privacy_rung(data, nn.Identity(), name, 2, cfg, 3, CPU, until=1, seed=5)
    assert state.epoch == 1 and first["epochs"] == 1
    last, last_state = privacy_rung(data, nn.Identity(), name, 2, cfg, 3, CPU, until=3,
                                    state=state, seed=5)  # fmt: skip
    assert _scores(last) == _scores(whole) and last["epochs"] == 3
    a, b = _weights(whole_state), _weights(last_state)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The first rung's weights differ: the test compares trained weights, not fresh ones.
    assert not all(torch.equal(a[k], v) for k, v in _weights(state).items())
    assert _scores(whole) == _scores(attack_privacy(data, nn.Identity(), name, 2, cfg, 3, CPU,
                                                    seed=5))  # fmt: skip
    with pytest.raises(ValueError, match="until"):
        privacy_rung(data, nn.Identity(), name, 2, cfg, 3, CPU, until=1, state=state)
