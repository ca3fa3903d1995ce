"""Shared image operations of the encoders: Gaussian kernels, depthwise per-frame blur, and
down/up sampling of clips.

Used by BDQ (Blur module, Sec. 3.1 of ``papers/001``), ELR (12x16 down-sampling and bilinear up,
Sec. 3 of ``papers/000``; lens blur, STAT Sec. 4.1 of ``papers/002``), the ``downsample`` baseline
(Ryoo et al., BDQ Sec. 4.3) and the ``blur`` baseline. All functions take and return clips of
shape ``(B, C, T, H, W)`` and work spatially, frame by frame; nothing mixes frames or clips.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

Padding = Literal["zeros", "replicate"]


def gaussian_kernel1d(
    sigma: torch.Tensor | float,
    size: int,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps (odd), in pixels.

    ``g_i = exp(-i^2 / (2 sigma^2))`` for ``i = -(size // 2) .. size // 2``, then ``g /= g.sum()``.
    ``sigma`` may be a tensor that requires grad: the kernel is then differentiable in it (BDQ
    learns sigma through the kernel). Returns shape ``(size,)``.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    if isinstance(sigma, torch.Tensor):
        device = sigma.device if device is None else device
        sigma = sigma.to(dtype)
    half = size // 2
    i = torch.arange(-half, half + 1, device=device, dtype=dtype)
    g = torch.exp(-(i**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_kernel2d(
    sigma: torch.Tensor | float,
    size: int,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The ``(size, size)`` kernel ``outer(g, g)`` of :func:`gaussian_kernel1d`; sums to 1."""
    g = gaussian_kernel1d(sigma, size, device=device, dtype=dtype)
    return torch.outer(g, g)


def kernel_size_for(sigma: float) -> int:
    """Odd kernel size covering +-3 sigma (99.7% of the mass), at least 3."""
    return max(3, 2 * math.ceil(3 * sigma) + 1)


def blur_frames(x: torch.Tensor, kernel: torch.Tensor, padding: Padding = "zeros") -> torch.Tensor:
    """Convolve every frame of every channel of ``x`` (B, C, T, H, W) with ``kernel`` (k, k).

    Depthwise (``groups=C``, the same kernel for each channel), spatial only: a ``(1, k, k)``
    conv3d, as in the BDQ release. ``padding="zeros"`` is what BDQ does; ``"replicate"`` keeps a
    constant image constant up to the borders, which a lens does (used by ELR and ``blur``).
    Output shape = input shape, dtype of ``x``.
    """
    c = x.shape[1]
    k = kernel.shape[-1]
    weight = kernel.to(x.dtype).reshape(1, 1, 1, k, k).expand(c, 1, 1, k, k)
    p = k // 2
    if padding == "zeros":
        return F.conv3d(x, weight, padding=(0, p, p), groups=c)
    if padding == "replicate":
        # F.pad pads the last three dims of a 5-D tensor: (W, W, H, H, T, T).
        return F.conv3d(F.pad(x, (p, p, p, p, 0, 0), mode="replicate"), weight, groups=c)
    raise ValueError(f"padding must be 'zeros' or 'replicate', got {padding!r}")


def gaussian_blur(x: torch.Tensor, sigma: float, padding: Padding = "replicate") -> torch.Tensor:
    """Blur ``x`` (B, C, T, H, W) per frame with a Gaussian of ``sigma`` px (0 = unchanged)."""
    if sigma <= 0:
        return x
    size = kernel_size_for(sigma)
    kernel = gaussian_kernel2d(sigma, size, device=x.device, dtype=torch.float32)
    return blur_frames(x, kernel, padding)


def to_frames(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W): one 2-D image per frame, for 2-D ops."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def from_frames(frames: torch.Tensor, t: int) -> torch.Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W), the inverse of :func:`to_frames`."""
    bt, c, h, w = frames.shape
    return frames.reshape(bt // t, t, c, h, w).transpose(1, 2)


def area_downsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average each frame of ``x`` (B, C, T, H, W) down to ``size`` = (h, w) pixels.

    ``mode="area"`` is adaptive average pooling: every low-res pixel is the mean of the high-res
    pixels it covers, as a sensor with bigger pixels would measure (STAT's "average
    down-sampling"). Returns (B, C, T, h, w).
    """
    t = x.shape[2]
    return from_frames(F.interpolate(to_frames(x), size=size, mode="area"), t)


def bilinear_upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of each frame of ``x`` (B, C, T, h, w) to ``size`` = (H, W) (ELR Sec. 3:
    "upsample it back ... with bilinear interpolation"). Returns (B, C, T, H, W)."""
    t = x.shape[2]
    frames = F.interpolate(to_frames(x), size=size, mode="bilinear", align_corners=False)
    return from_frames(frames, t)
