"""privar's encoders, one registry: ``create_encoder(name, **params)``, ``list_encoders()``.

Every encoder is an :class:`~privar.encoders.base.Encoder` mapping float clips
``(B, C, T, H, W)`` in [0, 1] to ``(B, C, out_frames(T), H, W)``. Registered names:

* ``identity``: no privacy (the baseline every Pareto plot shows).
* ``bdq``: Blur, Difference, Quantization (BDQ, ``papers/001``, Sec. 3.1); ``preset="reference"``
  is the authors' release.
* ``elr``: extreme low resolution with optional lens blur and noise (``papers/000``, ``002``).
* ``downsample``: Ryoo et al.'s square down-sampling (BDQ Sec. 4.3).
* ``blur``, ``pixelate``: hand-crafted degradations; ``events``: a simulated event camera (BDQ
  Sec. 5.6).
* ``unet2d``: Wu et al.'s learned frame-level UNet (BDQ Sec. 4.3).

The registry itself lives in :mod:`privar.encoders.base`, so that the modules registering into it
do not import this package half-initialised; importing this package registers them all.
"""

from __future__ import annotations

from typing import Any

# Imported for their registrations.
from privar.encoders import baselines, bdq, elr, unet2d  # noqa: F401
from privar.encoders.base import ENCODERS, Encoder

__all__ = ["ENCODERS", "Encoder", "create_encoder", "list_encoders"]


def create_encoder(name: str, **params: Any) -> Encoder:
    """Build the encoder registered as ``name`` with ``params``; an unknown name is a
    :class:`~privar.errors.UserError` listing the known ones."""
    return ENCODERS.create(name, **params)


def list_encoders() -> list[str]:
    """The registered encoder names, sorted."""
    return ENCODERS.names()
