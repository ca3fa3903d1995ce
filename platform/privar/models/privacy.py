"""2D privacy models: the adversaries that try to read private attributes off encoded frames.

BDQ (paper 001, Sec. 4.2) trains a 2D ResNet-50 privacy model, initialised from ImageNet, on the
encoder's output frames, and Sec. 5.2 attacks the encoder with ten image classifiers
(:data:`DEFAULT_ADVERSARIES`; all from ImageNet) to show that privacy holds against adversaries
the encoder never saw. The farm trains all of them; on a CPU it uses the babies
(:data:`BABY_ADVERSARIES`).

Contract of every privacy model: input float ``(N, C, H, W)`` frames (a clip's frames folded into
N), output logits ``(N, num_classes)``. Factory: ``factory(num_classes, pretrained=None, **kw)``;
the classifier head is built for ``num_classes`` (an ImageNet head is dropped on loading).
All torchvision models here accept 32x32 inputs; ``vit_b_16`` needs ``image_size`` (a multiple of
its 16-pixel patch) equal to the input size.
"""

from __future__ import annotations

from typing import Any

import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models.vision_transformer import interpolate_embeddings

from privar.errors import UserError
from privar.models import PRIVACY_MODELS
from privar.models.action import MeanMaxPool
from privar.models.weights import StateDict, load_pretrained
from privar.study import DataConfig

#: The ten adversaries of BDQ Sec. 5.2 (Fig. 5), all ImageNet-initialised there.
DEFAULT_ADVERSARIES: tuple[str, ...] = (
    "resnet18",
    "resnet50",
    "resnet101",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "mobilenet_v3_large",
    "shufflenet_v2_x1_0",
    "densenet121",
    "efficientnet_b0",
    "vit_b_16",
)
#: Cheap adversaries of two capacities, so a CPU farm still attacks with more than one model.
BABY_ADVERSARIES: tuple[str, ...] = ("baby2d", "baby2d_wide")

# Key prefix of each torchvision classifier's head, replaced for num_classes.
_HEADS: dict[str, str] = {
    "resnet18": "fc.",
    "resnet50": "fc.",
    "resnet101": "fc.",
    "resnext50_32x4d": "fc.",
    "wide_resnet50_2": "fc.",
    "mobilenet_v3_large": "classifier.3.",
    "shufflenet_v2_x1_0": "fc.",
    "densenet121": "classifier.",
    "efficientnet_b0": "classifier.1.",
}


def _register_torchvision(arch: str) -> None:
    @PRIVACY_MODELS.register(arch, input="frames", pretrained=("torchvision",))
    def factory(num_classes: int, pretrained: str | None = None) -> nn.Module:
        # weights=None: nothing downloads here; "torchvision" weights come through
        # load_pretrained, which keeps the fresh num_classes head.
        model = getattr(tvm, arch)(weights=None, num_classes=num_classes)
        return load_pretrained(model, pretrained, name=arch, head=(_HEADS[arch],))

    factory.__name__ = factory.__qualname__ = arch
    factory.__doc__ = (
        f"torchvision ``{arch}``: ``(N, 3, H, W)`` -> ``(N, num_classes)``."
    )


for _arch in _HEADS:
    _register_torchvision(_arch)


def frame_side(data: DataConfig) -> dict[str, Any]:
    """ViT's position embeddings are made for one input size: the study's frames."""
    return {"image_size": data.size[0]}


@PRIVACY_MODELS.register("vit_b_16", input="frames", square_multiple=16, from_data=frame_side,
                         pretrained=("torchvision",))  # fmt: skip
def vit_b_16(num_classes: int, pretrained: str | None = None, image_size: int = 224) -> nn.Module:
    """torchvision ViT-B/16 for ``(N, 3, image_size, image_size)`` -> ``(N, num_classes)``.

    ``image_size`` must be a multiple of the 16-pixel patch and equal the input size (32 on the
    CPU tests). Pretrained position embeddings for another size are interpolated (bicubic)."""
    patch = 16
    if image_size < patch or image_size % patch:
        raise UserError(f"vit_b_16: image_size {image_size} must be a multiple of {patch}")
    model = tvm.vit_b_16(weights=None, image_size=image_size, num_classes=num_classes)

    def resize_positions(state: StateDict, model: nn.Module) -> StateDict:
        key = "encoder.pos_embedding"
        if key in state and state[key].shape != model.state_dict()[key].shape:
            state = dict(interpolate_embeddings(image_size, patch, state))
        return state

    return load_pretrained(
        model, pretrained, name="vit_b_16", head=("heads.head.",), convert=resize_positions
    )


class Baby2D(nn.Module):
    """Three 3x3 conv-BN-ReLU layers (2x max-pool after the first two), mean and max pooling
    and a linear head: ``(N, C, H, W)`` -> ``(N, num_classes)``. A plain stem: as an adversary
    it should see flat colour, the strongest identity cue."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.features = nn.Sequential(*layers, MeanMaxPool())
        self.fc = nn.Linear(2 * cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@PRIVACY_MODELS.register("baby2d", input="frames")
def baby2d(num_classes: int, pretrained: str | None = None, in_channels: int = 3,
           width: int = 16) -> nn.Module:  # fmt: skip
    """``Baby2D`` at width 16 (~24k params), fast on 32x32 frames on a CPU."""
    model = Baby2D(num_classes, in_channels, width)
    return load_pretrained(model, pretrained, name="baby2d", head=("fc.",))


@PRIVACY_MODELS.register("baby2d_wide", input="frames")
def baby2d_wide(num_classes: int, pretrained: str | None = None, in_channels: int = 3,
                width: int = 32) -> nn.Module:  # fmt: skip
    """``Baby2D`` at width 32 (~94k params): a second cheap adversary for the farm."""
    model = Baby2D(num_classes, in_channels, width)
    return load_pretrained(model, pretrained, name="baby2d_wide", head=("fc.",))
