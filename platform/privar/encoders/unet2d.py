"""A learned frame-level encoder: a small 2-D UNet applied to every frame.

This is the Wu et al. baseline of BDQ (``papers/001``, Sec. 4.3): "a UNet-like network ... a 2D
convolution-based frame-level filter [that] converts each frame into a feature map of the same
shape as the original frame", trained adversarially like BDQ. Theirs has 1.3M parameters (BDQ,
Table 1); this one is deliberately light (``base=16``: about 0.1M) so that studies run on a CPU,
and ``base`` scales it up.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from privar.encoders import ops
from privar.encoders.base import ENCODERS, Encoder


def _block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv + GroupNorm + ReLU. GroupNorm, not BatchNorm: the encoding of a clip must not
    depend on the other clips of its batch (the camera sees one clip at a time)."""
    groups = math.gcd(8, cout)
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.GroupNorm(groups, cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.GroupNorm(groups, cout),
        nn.ReLU(inplace=True),
    )


class UNet2d(Encoder):
    """``(B, C, T, H, W)`` in [0, 1] -> ``(B, C, T, H, W)`` in (0, 1), frame by frame.

    Two down-sampling levels (max-pool 2) with ``base``, ``2 base``, ``4 base`` channels, bilinear
    up-sampling with skip connections, a 1x1 conv to C channels and a sigmoid. Any H, W works
    (the up-sampled maps are resized to their skip's size). Wu et al. start the encoder from an
    identity mapping by pre-training it to reconstruct its input; that is a training step, not
    part of this module.
    """

    def __init__(self, channels: int = 3, base: int = 16) -> None:
        super().__init__()
        if channels < 1 or base < 1:
            raise ValueError(f"channels and base must be >= 1, got {channels}, {base}")
        self.enc1 = _block(channels, base)
        self.enc2 = _block(base, 2 * base)
        self.mid = _block(2 * base, 4 * base)
        self.dec2 = _block(4 * base + 2 * base, 2 * base)
        self.dec1 = _block(2 * base + base, base)
        self.head = nn.Conv2d(base, channels, 1)

    @staticmethod
    def _up_cat(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([up, skip], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        t = x.shape[2]
        f = ops.to_frames(x)  # (B*T, C, H, W): every frame on its own
        e1 = self.enc1(f)
        e2 = self.enc2(F.max_pool2d(e1, 2, ceil_mode=True))
        m = self.mid(F.max_pool2d(e2, 2, ceil_mode=True))
        d2 = self.dec2(self._up_cat(m, e2))
        d1 = self.dec1(self._up_cat(d2, e1))
        return ops.from_frames(torch.sigmoid(self.head(d1)), t)


@ENCODERS.register("unet2d", input="clip")
def unet2d(channels: int = 3, base: int = 16) -> UNet2d:
    """Wu et al.'s frame-level UNet encoder, ``base`` channels at full resolution."""
    return UNet2d(channels=channels, base=base)
