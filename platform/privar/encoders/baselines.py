"""Baselines: no privacy (identity), Gaussian blur, pixelation, a simulated event camera.

Blur and pixelation are the "hand-crafted features such as blurring, down-sampling, pixelation"
of early privacy work (BDQ, ``papers/001``, Sec. 2). The event camera is BDQ's DVS comparison
(Sec. 5.6, Fig. 8): the paper converts videos to events with a video-to-events simulator and
varies the contrast threshold; :class:`Events` is the standard DVS pixel model behind such
simulators, one event frame per pair of consecutive frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from privar.encoders import ops
from privar.encoders.base import ENCODERS, Encoder

# ITU-R BT.601 luma weights, to turn RGB frames into the single intensity a DVS pixel measures.
LUMA = (0.299, 0.587, 0.114)


@ENCODERS.register("identity", input="clip")
class Identity(Encoder):
    """No privacy, the baseline: ``(B, C, T, H, W)`` -> the same tensor. No parameters."""

    def __init__(self) -> None:  # takes nothing (nn.Module's own would take anything)
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return x


@ENCODERS.register("blur", input="clip")
class Blur(Encoder):
    """Gaussian blur of each frame: ``(B, C, T, H, W)`` -> same shape.

    ``sigma`` in pixels; the kernel spans +-3 sigma (size ``2 ceil(3 sigma) + 1``); replicate
    padding, so a flat image stays flat. No trainable parameters.
    """

    def __init__(self, sigma: float = 2.0) -> None:
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return ops.gaussian_blur(x, self.sigma, padding="replicate")


@ENCODERS.register("pixelate", input="clip")
class Pixelate(Encoder):
    """Pixelation: ``(B, C, T, H, W)`` -> same shape, each ``block`` x ``block`` tile replaced by
    its mean (nearest back up). Tiles at the right/bottom edge may be smaller when ``block`` does
    not divide H or W; they are averaged over the pixels they hold. No trainable parameters.
    """

    def __init__(self, block: int = 8) -> None:
        super().__init__()
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.block = int(block)

    def extra_repr(self) -> str:
        return f"block={self.block}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        t, h, w = x.shape[2:]
        k = self.block
        # ceil_mode with no padding averages a clipped edge tile over its in-image pixels only.
        tiles = F.avg_pool2d(ops.to_frames(x), kernel_size=k, stride=k, ceil_mode=True)
        # Nearest up-sampling by exact repetition, cropped back to (H, W).
        up = tiles.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)[..., :h, :w]
        return ops.from_frames(up, t)


@ENCODERS.register("events", input="clip")
class Events(Encoder):
    """A simulated event camera (DVS): ``(B, C, T, H, W)`` in [0, 1] -> ``(B, C, T-1, H, W)``
    with values in {-1, 0, +1}.

    Each pixel measures log intensity ``L = log(eps + gray)`` (``gray``: BT.601 luma for 3
    channels, the channel mean otherwise). It keeps a reference ``L_ref``, set to ``L_0`` at the
    first frame. At frame t >= 1 it fires +1 if ``L_t - L_ref > threshold``, -1 if
    ``L_t - L_ref < -threshold``, else 0, and resets ``L_ref = L_t`` where it fired, so slow
    changes accumulate until they cross the threshold. One event at most per pixel and frame
    pair (a real sensor may fire several). The event frame is replicated to the C channels so the
    output shape matches the other encoders.

    Not differentiable: the output is piecewise constant in the input, and never requires grad;
    the models trained on it get their gradients as usual. No trainable parameters.
    """

    differentiable = False

    def __init__(self, threshold: float = 0.2, eps: float = 1e-3) -> None:
        super().__init__()
        if threshold <= 0 or eps <= 0:
            raise ValueError(f"threshold and eps must be > 0, got {threshold}, {eps}")
        self.threshold = float(threshold)
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, eps={self.eps}"

    def out_frames(self, t: int) -> int:
        return t - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x, min_frames=2)
        c = x.shape[1]
        with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            if c == 3:
                w = torch.tensor(LUMA, device=x.device).view(1, 3, 1, 1, 1)
                gray = (x * w).sum(dim=1)
            else:
                gray = x.mean(dim=1)
            log_i = torch.log(self.eps + gray)  # (B, T, H, W)
            ref = log_i[:, 0]
            frames = []
            for t in range(1, log_i.shape[1]):
                change = log_i[:, t] - ref
                ev = (change > self.threshold).float() - (change < -self.threshold).float()
                ref = torch.where(ev != 0, log_i[:, t], ref)
                frames.append(ev)
            events = torch.stack(frames, dim=1)  # (B, T-1, H, W)
            return events.unsqueeze(1).expand(-1, c, -1, -1, -1).contiguous()
