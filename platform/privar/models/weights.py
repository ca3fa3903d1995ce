"""Pretrained weights for the model zoo: a local state-dict file or torchvision's default weights.

BDQ (paper 001, Sec. 4.2) initialises the 3D action model from Kinetics-400 and the 2D privacy
model from ImageNet; Sec. 5.2 initialises all ten adversaries from ImageNet. ELR (paper 000) uses
I3D, whose 3D kernels are inflated from 2D ImageNet kernels. Every factory takes
``pretrained: str | None``:

- ``None``: random initialisation;
- ``"torchvision"``: torchvision's default weights enum for the architecture the model is built
  on (:data:`TORCHVISION_SOURCES`). Only works with internet access or a populated torch hub cache
  (``$TORCH_HOME/hub/checkpoints``);
- anything else: a local file written with ``torch.save(model.state_dict(), path)``.

Loading is strict except for the classifier head: head keys whose shape differs (another
``num_classes``) or that the model lacks are dropped and the head keeps its fresh initialisation.
Any other mismatch is a :class:`~privar.errors.UserError` that names the file and the keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from privar.errors import UserError

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

StateDict = dict[str, torch.Tensor]
#: ``convert(state, model) -> state``: adapts a loaded state dict to the model (inflation, ...).
Converter = Callable[[StateDict, nn.Module], StateDict]

#: Registered model name -> the torchvision builder whose default weights ``"torchvision"`` loads.
#: i3d_r50 inflates the 2D ResNet-50 ImageNet weights; the STAT models load their backbone only.
TORCHVISION_SOURCES: dict[str, str] = {
    "r3d_18": "r3d_18",
    "mc3_18": "mc3_18",
    "r2plus1d_18": "r2plus1d_18",
    "i3d_r50": "resnet50",
    "stat_resnet34": "resnet34",
    "stat_r2plus1d_18": "r2plus1d_18",
    "resnet18": "resnet18",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnext50_32x4d": "resnext50_32x4d",
    "wide_resnet50_2": "wide_resnet50_2",
    "mobilenet_v3_large": "mobilenet_v3_large",
    "shufflenet_v2_x1_0": "shufflenet_v2_x1_0",
    "densenet121": "densenet121",
    "efficientnet_b0": "efficientnet_b0",
    "vit_b_16": "vit_b_16",
}

# How many offending keys an error message lists before it says "... and N more".
_SHOWN = 5


def torchvision_weights(name: str) -> WeightsEnum:
    """The weights enum member ``pretrained="torchvision"`` means for registered model ``name``
    (e.g. ``ResNet50_Weights.IMAGENET1K_V2`` for ``i3d_r50``). Downloads nothing."""
    if name not in TORCHVISION_SOURCES:
        raise UserError(f"model {name!r} has no torchvision weights; pass a state-dict file path")
    from torchvision.models import get_model_weights  # lazily: see privar.models.privacy

    return get_model_weights(TORCHVISION_SOURCES[name]).DEFAULT


def read_state_dict(path: str | os.PathLike[str]) -> StateDict:
    """Read a state dict saved with ``torch.save``; a missing or unreadable file is a UserError.

    Checkpoints that wrap the weights (``{"state_dict": ...}`` or ``{"model": ...}``) and keys
    prefixed by DistributedDataParallel (``module.``) are accepted.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: pretrained weights file not found")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or non-torch file
        raise UserError(f"{path}: not a readable torch state dict ({type(err).__name__})") from err
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise UserError(f"{path}: expected a state dict (str -> tensor), got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def _is_head(key: str, head: tuple[str, ...]) -> bool:
    return any(key.startswith(prefix) for prefix in head)


def _listed(keys: list[str]) -> str:
    more = f" ... and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def load_state_dict_checked(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str, head: tuple[str, ...] = ()
) -> nn.Module:
    """Load ``state`` into ``model``; keys starting with a ``head`` prefix are dropped when their
    shape differs or the model lacks them. Anything else that mismatches raises a UserError
    starting with ``source`` (the file path) and listing missing, unexpected and reshaped keys."""
    own = model.state_dict()
    kept: StateDict = {}
    unexpected: list[str] = []
    reshaped: list[str] = []
    for key, value in state.items():
        if key not in own:
            if not _is_head(key, head):
                unexpected.append(key)
        elif own[key].shape != value.shape:
            if not _is_head(key, head):
                reshaped.append(f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}")
        else:
            kept[key] = value
    # num_batches_tracked is absent from old checkpoints; BatchNorm fills it in itself.
    missing = [
        k
        for k in own
        if k not in state and not _is_head(k, head) and not k.endswith("num_batches_tracked")
    ]
    problems = [
        f"{label}: {_listed(keys)}"
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatch (file vs model)", reshaped),
        )
        if keys
    ]
    if problems:
        raise UserError(
            f"{source}: incompatible with {type(model).__name__}: {'; '.join(problems)}"
        )
    model.load_state_dict(kept, strict=False)
    return model


def load_pretrained(
    model: nn.Module,
    pretrained: str | os.PathLike[str] | None,
    *,
    name: str,
    head: tuple[str, ...] = (),
    convert: Converter | None = None,
) -> nn.Module:
    """Initialise registered model ``name`` from ``pretrained`` (None, "torchvision" or a path).

    ``head``: key prefixes of the classifier head, dropped when their shape differs.
    ``convert``: adapts the loaded state dict first (I3D inflation, ViT position embeddings...).
    """
    if pretrained is None:
        return model
    if pretrained == "torchvision":
        weights = torchvision_weights(name)
        source = f"torchvision weights {weights}"
        try:
            # torch.hub looks in $TORCH_HOME/hub/checkpoints first and downloads only if absent.
            state = weights.get_state_dict(
                progress=True, check_hash=True, map_location="cpu", weights_only=True
            )
        except Exception as err:  # urllib / hash errors: no internet and no cached file
            raise UserError(
                f"{source}: cannot download or find them in the torch hub cache "
                f"({type(err).__name__}: {err})"
            ) from err
    else:
        source = os.fspath(pretrained)
        state = read_state_dict(source)
    # Also for local copies of torchvision's DenseNet files; a no-op for every other model.
    state = _rename_legacy_densenet_keys(state)
    if convert is not None:
        state = convert(state, model)
    return load_state_dict_checked(model, state, source, head)


# torchvision's DenseNet checkpoints predate the ban on '.' in module names: 'norm.1' -> 'norm1'
# (the same rename torchvision.models.densenet._load_state_dict applies).
_DENSENET_LEGACY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _rename_legacy_densenet_keys(state: Mapping[str, torch.Tensor]) -> StateDict:
    out: StateDict = {}
    for key, value in state.items():
        match = _DENSENET_LEGACY.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


def inflate_state_dict(state: StateDict, model: nn.Module) -> StateDict:
    """I3D inflation (Carreira & Zisserman 2017): a 2D kernel (O, I, kh, kw) becomes the 3D kernel
    (O, I, kt, kh, kw) of the model by repeating it ``kt`` times over time and dividing by ``kt``,
    so a clip that is constant in time gives the 2D network's activations. Tensors that already
    have the model's shape (BatchNorm, fc, 3D kernels) pass unchanged."""
    own = model.state_dict()
    out: StateDict = {}
    for key, value in state.items():
        target = own.get(key)
        if target is not None and value.dim() == 4 and target.dim() == 5:
            kt = target.shape[2]
            value = value.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        out[key] = value
    return out
