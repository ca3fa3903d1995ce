"""3D action models: torchvision's video ResNets and a CPU-sized ``baby3d``.

BDQ (paper 001, Sec. 4.2 and Sec. 5.3) validates an encoder by training fresh 3D CNNs, initialised
from Kinetics-400, on its output. torchvision ships three Kinetics-400 18-layer video ResNets
(Tran et al. 2018): ``r3d_18`` (full 3x3x3 convolutions), ``mc3_18`` (3D in the stem and first
stage, 2D above) and ``r2plus1d_18`` (each 3D conv factored into 1x3x3 spatial then 3x1x1
temporal). The I3D ResNet-50 lives in ``i3d.py``, the STAT K-segment models in ``stat.py``.

Contract of every action model: input float ``(B, C, T, H, W)``, normalised already; output
logits ``(B, num_classes)``. Factory: ``factory(num_classes, pretrained=None, ...)``, every
option spelled out.
"""

from __future__ import annotations

import torch
from torch import nn

from privar.models import ACTION_MODELS
from privar.models.weights import load_pretrained


def _video_resnet(arch: str, num_classes: int, pretrained: str | None) -> nn.Module:
    # Built with weights=None so nothing downloads here; load_pretrained fetches the Kinetics-400
    # weights only for pretrained="torchvision" and drops their 400-way head if num_classes differs.
    from torchvision.models import video  # lazily: see privar.models.privacy

    model = getattr(video, arch)(weights=None, num_classes=num_classes)
    return load_pretrained(model, pretrained, name=arch, head=("fc.",))


@ACTION_MODELS.register("r3d_18", input="clip", pretrained=("torchvision",))
def r3d_18(num_classes: int, pretrained: str | None = None) -> nn.Module:
    """torchvision R3D-18 (33.4M params): ``(B, 3, T, H, W)`` -> ``(B, num_classes)``."""
    return _video_resnet("r3d_18", num_classes, pretrained)


@ACTION_MODELS.register("mc3_18", input="clip", pretrained=("torchvision",))
def mc3_18(num_classes: int, pretrained: str | None = None) -> nn.Module:
    """torchvision MC3-18 (11.7M params): ``(B, 3, T, H, W)`` -> ``(B, num_classes)``."""
    return _video_resnet("mc3_18", num_classes, pretrained)


@ACTION_MODELS.register("r2plus1d_18", input="clip", pretrained=("torchvision",))
def r2plus1d_18(num_classes: int, pretrained: str | None = None) -> nn.Module:
    """torchvision R(2+1)D-18 (31.5M params): ``(B, 3, T, H, W)`` -> ``(B, num_classes)``."""
    return _video_resnet("r2plus1d_18", num_classes, pretrained)


class ContrastConv3d(nn.Conv3d):
    """A 3D convolution that never answers to flat colour: the first half of its kernels sum to
    zero over time (T) at every (H, W) tap, so they see only change; the other half sum to zero
    over (T, H, W), so they see edges and change.

    Why: trained from scratch on a few hundred clips, a plain 3D stem sees mostly the clip's
    background colour and the actor's clothes, memorises the training clips by them and never
    finds the limbs: on the synthetic set it fits the training clips and scores 0.23-0.46 on
    test clips. Edge kernels alone still see the still figure's outline, which is identity, not
    action: 0.65-0.75 on 8-frame raw clips of the synthetic set (two seeds, 10 epochs), against
    0.90-0.93 with half of the kernels temporal (0.93-0.95 on BDQ's output, where edge kernels
    alone give 0.88-0.93). A fixed prior on the weights, like a bank of edge and motion filters;
    the input stays the raw clip."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.out_channels // 2
        motion, edges = self.weight[:n], self.weight[n:]
        w = torch.cat([motion - motion.mean(dim=2, keepdim=True),
                       edges - edges.mean(dim=(2, 3, 4), keepdim=True)])  # fmt: skip
        return self._conv_forward(x, w, self.bias)


class MeanMaxPool(nn.Module):
    """Global average and max pooling side by side, ``(B, C, ...)`` -> ``(B, 2C)``: the actor is
    small and the background large, so the mean alone washes the actor out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        return torch.cat([x.mean(2), x.amax(2)], 1)


def _conv_bn_relu3d(conv: type[nn.Conv3d], cin: int, cout: int,
                    stride: tuple[int, int, int]) -> nn.Sequential:  # fmt: skip
    return nn.Sequential(
        conv(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class Baby3D(nn.Module):
    """Three 3x3x3 conv-BN-ReLU layers (a zero-sum :class:`ContrastConv3d` stem), mean and max
    pooling and a linear head: ``(B, C, T, H, W)`` -> ``(B, num_classes)``.

    The stem halves H and W only (short clips keep their frames), the next two layers halve T,
    H and W: an 8x32x32 clip ends at 2x4x4.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn_relu3d(ContrastConv3d, in_channels, w, (1, 2, 2)),
            _conv_bn_relu3d(nn.Conv3d, w, 2 * w, (2, 2, 2)),
            _conv_bn_relu3d(nn.Conv3d, 2 * w, 4 * w, (2, 2, 2)),
            MeanMaxPool(),
        )
        self.fc = nn.Linear(8 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


@ACTION_MODELS.register("baby3d", input="clip")
def baby3d(
    num_classes: int, pretrained: str | None = None, in_channels: int = 3, width: int = 16
) -> nn.Module:
    """``Baby3D`` (~70k params at width 16), trains in seconds on 8x32x32 clips on a CPU."""
    model = Baby3D(num_classes, in_channels=in_channels, width=width)
    return load_pretrained(model, pretrained, name="baby3d", head=("fc.",))
