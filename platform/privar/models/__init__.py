"""privar's model zoo: action (3D / K-segment), privacy (2D) and reconstruction (3D UNet) models.

One :class:`~privar.registry.Registry` per kind, filled by ``@REG.register(name)`` in the modules
below, and one contract test per registry (``tests/test_models.py``):

- action models (``action``, ``i3d``, ``stat``): ``(B, C, T, H, W)`` float clips, normalised
  already -> logits ``(B, num_classes)``; ``factory(num_classes, pretrained=None, **kw)``.
  BDQ (paper 001) trains a 3D ResNet-50, ELR (paper 000) an I3D, STAT (paper 002) K-segment
  ResNet-34 / R(2+1)D-18 models that also expose ``forward_attention``.
- privacy models (``privacy``): ``(N, C, H, W)`` frames -> logits ``(N, num_classes)``; the ten
  adversaries of BDQ Sec. 5.2 plus CPU-sized babies of three kinds (two CNNs, a ViT, an
  MLP-Mixer); same factory signature.
- reconstruction models (``reconstruction``): encoded clips ``(B, C, T', H, W)`` -> RGB clips
  ``(B, 3, T', H, W)`` in [0, 1] (BDQ Sec. 5.4); ``factory(in_channels=3, pretrained=None, **kw)``.

``pretrained`` is ``None``, ``"torchvision"`` or a local state-dict file (see ``weights``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from privar.registry import Registry

ACTION_MODELS: Registry[nn.Module] = Registry("action model")
PRIVACY_MODELS: Registry[nn.Module] = Registry("privacy model")
RECON_MODELS: Registry[nn.Module] = Registry("reconstruction model")

# The model modules register into the registries above, so they are imported after them.
from privar.models import action, i3d, privacy, reconstruction, stat  # noqa: E402, F401
from privar.models.privacy import BABY_ADVERSARIES, DEFAULT_ADVERSARIES  # noqa: E402
from privar.models.stat import AttentionOutput  # noqa: E402


def create_action_model(name: str, num_classes: int, **kw: Any) -> nn.Module:
    """Action model ``name``: ``(B, C, T, H, W)`` -> logits ``(B, num_classes)``. ``kw``:
    ``pretrained`` and the model's own options (``num_segments`` for the STAT models...)."""
    return ACTION_MODELS.create(name, num_classes=num_classes, **kw)


def list_action_models() -> list[str]:
    return ACTION_MODELS.names()


def create_privacy_model(name: str, num_classes: int, **kw: Any) -> nn.Module:
    """Privacy model ``name``: frames ``(N, C, H, W)`` -> logits ``(N, num_classes)``. ``kw``:
    ``pretrained`` and the model's own options (``image_size`` for vit_b_16...)."""
    return PRIVACY_MODELS.create(name, num_classes=num_classes, **kw)


def list_privacy_models() -> list[str]:
    return PRIVACY_MODELS.names()


def create_reconstruction_model(name: str, in_channels: int = 3, **kw: Any) -> nn.Module:
    """Reconstruction model ``name``: ``(B, in_channels, T', H, W)`` -> ``(B, 3, T', H, W)`` in
    [0, 1]. ``kw``: ``pretrained``, ``base``, ``depth``."""
    return RECON_MODELS.create(name, in_channels=in_channels, **kw)


def list_reconstruction_models() -> list[str]:
    return RECON_MODELS.names()


def preferred_memory_format(model: nn.Module) -> torch.memory_format:
    """The channels-last format ``model.to(memory_format=...)`` accepts: ``channels_last_3d`` for
    3D-conv models, ``channels_last`` for 2D-conv ones, including the STAT models with a 2D
    backbone, which still take 5-D clips (``channels_last_3d`` inputs are fine). torch refuses
    ``channels_last_3d`` on a model holding any 4-D weight."""
    # Module.to converts every 4-D and 5-D tensor to the one format, so a model needs one kind.
    dims = {t.dim() for t in (*model.parameters(), *model.buffers()) if t.dim() in (4, 5)}
    if dims == {5}:
        return torch.channels_last_3d
    if dims == {4}:
        return torch.channels_last
    return torch.contiguous_format


__all__ = [
    "ACTION_MODELS",
    "BABY_ADVERSARIES",
    "DEFAULT_ADVERSARIES",
    "PRIVACY_MODELS",
    "RECON_MODELS",
    "AttentionOutput",
    "create_action_model",
    "create_privacy_model",
    "create_reconstruction_model",
    "list_action_models",
    "list_privacy_models",
    "list_reconstruction_models",
    "preferred_memory_format",
]
