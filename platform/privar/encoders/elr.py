"""Extreme low resolution: down-sample each frame, then bilinear back up to the input size.

* ``elr``: ELR (``papers/000``, Sec. 3: "downsample each frame to 12x16 and then upsample it back
  ... with bilinear interpolation") with STAT's camera model (``papers/002``, Sec. 4.1: "average
  down-sampling, while also include the lens blur term and the Gaussian noise term"; its tables go
  from 6x8 to 24x32).
* ``downsample``: the Ryoo et al. baseline of BDQ (``papers/001``, Sec. 4.3), square sizes 112,
  56, 28, 14, 7 and 4 px. Ryoo et al. also train on several learned sub-pixel transformations of
  each video; those are a training-time augmentation of the low-resolution data, not part of the
  degradation, and are not modelled here.

Both are the same module, :class:`LowResolution`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from privar.encoders import ops
from privar.encoders.base import ENCODERS, Encoder


class LowResolution(Encoder):
    """``(B, C, T, H, W)`` in [0, 1] -> ``(B, C, T, H, W)``, each frame seen by a camera of
    ``resolution`` pixels and shown back at ``H x W``.

    Per frame: optional lens blur (Gaussian, ``blur_sigma`` input pixels, replicate padding),
    area (average) down-sampling to ``resolution`` = (h, w), optional Gaussian read noise of std
    ``noise_std`` (intensity units, [0, 1] scale) added to the low-res image, which is then clipped
    to [0, 1] as a sensor's output is, and bilinear up-sampling back to (H, W).

    The noise is part of the camera, so it is on in training and in evaluation alike (an
    adversary never sees the clean low-res image). It is drawn with ``torch.randn_like``, from the
    global generator of the input's device: seed with ``torch.manual_seed`` to reproduce it.
    No trainable parameters.
    """

    def __init__(
        self,
        resolution: Sequence[int] = (12, 16),
        blur_sigma: float = 0.0,
        noise_std: float = 0.0,
    ) -> None:
        super().__init__()
        if len(resolution) != 2 or min(resolution) < 1:
            raise ValueError(f"resolution must be two positive ints (h, w), got {resolution}")
        if blur_sigma < 0 or noise_std < 0:
            raise ValueError(
                f"blur_sigma and noise_std must be >= 0, got {blur_sigma}, {noise_std}"
            )
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.blur_sigma = float(blur_sigma)
        self.noise_std = float(noise_std)

    def extra_repr(self) -> str:
        r, s, n = self.resolution, self.blur_sigma, self.noise_std
        return f"resolution={r}, blur_sigma={s}, noise_std={n}"

    def low_res(self, x: torch.Tensor) -> torch.Tensor:
        """The camera's own image: (B, C, T, H, W) -> (B, C, T, h, w)."""
        self.check_input(x)
        x = ops.gaussian_blur(x, self.blur_sigma, padding="replicate")
        lr = ops.area_downsample(x, self.resolution)
        if self.noise_std > 0:
            lr = (lr + self.noise_std * torch.randn_like(lr)).clamp(0.0, 1.0)
        return lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.bilinear_upsample(self.low_res(x), (x.shape[-2], x.shape[-1]))


@ENCODERS.register("elr", input="clip")
def elr(
    resolution: Sequence[int] = (12, 16), blur_sigma: float = 0.0, noise_std: float = 0.0
) -> LowResolution:
    """ELR / STAT: down to ``resolution`` (h, w), default 12x16, with optional blur and noise."""
    return LowResolution(resolution, blur_sigma=blur_sigma, noise_std=noise_std)


@ENCODERS.register("downsample", input="clip")
def downsample(size: int = 28) -> LowResolution:
    """Ryoo et al.: square ``size`` x ``size`` down-sampling and back up, no blur, no noise."""
    return LowResolution((size, size))
