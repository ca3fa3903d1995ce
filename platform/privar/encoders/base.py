"""The encoder contract and the encoder registry.

An encoder is the privacy-preserving degradation that runs at the camera (BDQ, Sec. 3.1 of
``papers/001``; ELR, Sec. 3 of ``papers/000``; STAT, Sec. 4.1 of ``papers/002``): it maps a clip of
float frames in [0, 1] to the representation the action model (and the adversaries) see.
"""

from __future__ import annotations

import torch
from torch import nn

from privar.registry import Registry


class Encoder(nn.Module):
    """Base class of every encoder.

    ``forward(x)`` takes ``x`` of shape ``(B, C, T, H, W)``, float, values in [0, 1], and returns a
    float tensor of shape ``(B, C, out_frames(T), H, W)``. Unless an encoder's docstring says
    otherwise, clip ``b`` of the output depends only on clip ``b`` of the input: an encoder models
    a camera, which sees one clip at a time.
    """

    #: False for encoders whose output is piecewise constant in the input (the event camera): the
    #: output then never requires grad, and training the models after it still works.
    differentiable: bool = True

    def param_count(self) -> int:
        """Number of trainable scalars (parameters with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def out_frames(self, t: int) -> int:
        """Frames out for ``t`` frames in (``t - 1`` for encoders that difference frames)."""
        return t

    @staticmethod
    def check_input(x: torch.Tensor, min_frames: int = 1) -> None:
        """Raise ``ValueError`` unless ``x`` is a float ``(B, C, T, H, W)`` clip batch."""
        if x.dim() != 5 or not x.is_floating_point():
            raise ValueError(
                f"expected a float (B, C, T, H, W) tensor, got {tuple(x.shape)} {x.dtype}"
            )
        if x.shape[2] < min_frames:
            raise ValueError(f"expected at least {min_frames} frames, got {x.shape[2]}")


#: Every encoder, by name. ``import privar.encoders`` fills it.
ENCODERS: Registry[Encoder] = Registry("encoder")
