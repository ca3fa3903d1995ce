"""What an encoder shows, as one image a person can look at in the MLflow UI."""

from __future__ import annotations

import numpy as np
import torch


def sample_grid(x: torch.Tensor, z: torch.Tensor, scale: int = 4) -> np.ndarray:
    """Raw frames over encoded frames: uint8 (2 * H * scale, N * W * scale, 3).

    ``x`` float (N, C, T, H, W) in [0, 1], the raw clips; ``z`` (N, C', T', H', W') their
    encodings; the middle frame of each. Each encoded frame is stretched to its own min..max
    (BDQ's differences are signed and small) and resized to the raw frame's size; one-channel
    encodings are shown grey. ``scale`` enlarges tiny frames by pixel repetition."""
    n, _, _, h, w = x.shape
    raw = x[:, :, x.shape[2] // 2].float()
    enc = z[:, :, z.shape[2] // 2].float()
    if enc.shape[1] == 1:
        enc = enc.expand(-1, 3, -1, -1)
    enc = enc[:, :3]
    if enc.shape[-2:] != (h, w):
        enc = torch.nn.functional.interpolate(enc, size=(h, w), mode="nearest")
    lo = enc.amin(dim=(1, 2, 3), keepdim=True)
    hi = enc.amax(dim=(1, 2, 3), keepdim=True)
    enc = (enc - lo) / (hi - lo).clamp_min(1e-6)
    rows = [torch.cat(list(r), dim=2) for r in (raw.clamp(0, 1), enc)]  # (3, H, N * W) each
    grid = torch.cat(rows, dim=1).repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return (grid.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
