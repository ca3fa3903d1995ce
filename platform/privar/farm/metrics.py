"""Image-quality metrics of the reconstruction attack, as pure torch functions.

Both take ``pred`` and ``target`` of the same shape, clips ``(B, C, T, H, W)`` or frames
``(N, C, H, W)``, values in [0, max_val], on any device and in any float dtype (computed in
float64), and return one Python float: the metric of every frame, averaged over the
frames (each frame counts once, whatever batch it came in).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PSNR_CAP_DB = 100.0
"""PSNR of a frame reconstructed exactly: its MSE is 0 and its PSNR infinite, which would make
any average over frames infinite too, so a frame's MSE is floored at the MSE of this PSNR."""


def _as_frames(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B * T, C, H, W)``; ``(N, C, H, W)`` unchanged."""
    if x.dim() == 5:
        b, c, t, h, w = x.shape
        return x.transpose(1, 2).reshape(b * t, c, h, w)
    if x.dim() == 4:
        return x
    raise ValueError(f"expected (B, C, T, H, W) or (N, C, H, W), got {tuple(x.shape)}")


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")


def psnr(pred: torch.Tensor, target: torch.Tensor, max_val: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 * log10(max_val**2 / MSE)``, the MSE taken over one
    frame's channels and pixels, averaged over frames. A frame's PSNR is capped at
    :data:`PSNR_CAP_DB` (identical frames give exactly the cap)."""
    _check(pred, target)
    p, t = _as_frames(pred).double(), _as_frames(target).double()
    mse = (p - t).square().flatten(1).mean(1)
    mse = mse.clamp_min(max_val**2 * 10 ** (-PSNR_CAP_DB / 10))
    return float((10 * torch.log10(max_val**2 / mse)).mean())


def gaussian_window(size: int, sigma: float, device=None) -> torch.Tensor:
    """A normalised ``(size, size)`` Gaussian window (float64), centred on its middle pixel."""
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-coords.square() / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    max_val: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
) -> float:
    """Structural similarity (Wang et al. 2004), per channel, with a ``window`` x ``window``
    Gaussian window of std ``sigma`` (11 and 1.5, the paper's and scikit-image's
    ``gaussian_weights=True``), K1 = 0.01, K2 = 0.03, population (co)variances. The SSIM map is
    kept where the window lies wholly inside the frame (no padding, as scikit-image's cropped
    mean) and averaged over positions and channels: one value per frame, averaged over frames.

    Frames smaller than the window (ELR's 12x16, or smaller) clamp the window to the largest odd
    size that fits, ``min(window, H, W)`` rounded down to odd, same ``sigma`` renormalised over
    the smaller window; a 1-pixel window compares means only (luminance term)."""
    _check(pred, target)
    # float64: var = E[x^2] - E[x]^2 cancels badly in float32 next to C2 = 9e-4 (1e-4 off).
    p, t = _as_frames(pred).double(), _as_frames(target).double()
    c, h, w = p.shape[1:]
    size = min(window, h, w)
    size -= 1 - size % 2  # odd, so the window has a centre pixel
    k = gaussian_window(size, sigma, p.device).expand(c, 1, size, size)

    def filt(x: torch.Tensor) -> torch.Tensor:  # local Gaussian-weighted mean, per channel
        return F.conv2d(x, k, groups=c)

    mu_p, mu_t = filt(p), filt(t)
    var_p = filt(p * p) - mu_p.square()
    var_t = filt(t * t) - mu_t.square()
    cov = filt(p * t) - mu_p * mu_t
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p.square() + mu_t.square() + c1) * (var_p + var_t + c2)
    )
    # Every frame has the same number of map entries, so the mean over all of them is the mean
    # over frames of each frame's SSIM.
    return float(s.mean())


__all__ = ["PSNR_CAP_DB", "gaussian_window", "psnr", "ssim"]
