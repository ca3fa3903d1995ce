"""I3D ResNet-50: torchvision's 2D ResNet-50 inflated to 3D (``i3d_r50``).

ELR (paper 000, Sec. 3) extracts features with I3D; BDQ (paper 001, Sec. 4.2) uses a 3D
ResNet-50 action model. This is the "I3D ResNet-50" of the non-local paper (Wang et al. 2018,
Table 1) and PySlowFast's ``I3D_8x8_R50``, which inflates a ResNet-50 *selectively*, not every
3x3 into 3x3x3:

============  =====================================  =============================
stage         kernels (t x h x w)                    temporal kernel of conv_a
============  =====================================  =============================
conv1         5x7x7, 64, stride 1,2,2                -
pool1         max 1x3x3, stride 1,2,2                -
res2 (x3)     [3x1x1, 1x3x3, 1x1x1] x 256            3, 3, 3
pool2         max 3x1x1, stride 2,1,1                -
res3 (x4)     [kx1x1, 1x3x3, 1x1x1] x 512            3, 1, 3, 1
res4 (x6)     [kx1x1, 1x3x3, 1x1x1] x 1024           3, 1, 3, 1, 3, 1
res5 (x3)     [kx1x1, 1x3x3, 1x1x1] x 2048           1, 3, 1
============  =====================================  =============================

so only the stem and the first 1x1 of some bottlenecks (conv_a) see time; the 3x3 stays spatial.
Module names follow torchvision's ResNet (``conv1``, ``layer1.0.conv2``, ``fc``...) so a 2D
ResNet-50 state dict maps key for key; its 4-D kernels are inflated by the I3D rule (repeat over
time, divide by the temporal size; see :func:`~privar.models.weights.inflate_state_dict`). With
that rule a clip that is constant in time gives the 2D network's activations away from the
temporal borders, where zero padding (kept, as in the original) makes them differ.

Contract: input float ``(B, 3, T, H, W)``, any T >= 1; output logits ``(B, num_classes)``.
Time is downsampled once (pool2, x2); space 32x, as in the 2D ResNet-50.
"""

from __future__ import annotations

import torch
from torch import nn

from privar.models import ACTION_MODELS
from privar.models.weights import inflate_state_dict, load_pretrained

# Temporal kernel size of conv_a in each bottleneck of res2..res5 (non-local paper, Table 1).
I3D_TEMPORAL_KERNELS: tuple[tuple[int, ...], ...] = (
    (3, 3, 3),
    (3, 1, 3, 1),
    (3, 1, 3, 1, 3, 1),
    (1, 3, 1),
)


class Bottleneck3d(nn.Module):
    """torchvision's ResNet-50 bottleneck (stride on the 3x3, "v1.5") with a ``kt``x1x1 conv_a.

    ``(B, cin, T, H, W)`` -> ``(B, 4 * width, T, H / stride, W / stride)``.
    """

    expansion = 4

    def __init__(self, cin: int, width: int, kt: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv3d(cin, width, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(
            width, width, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False
        )
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv3d(cin, cout, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(cout),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class I3DResNet50(nn.Module):
    """I3D ResNet-50 (see the module docstring): ``(B, C, T, H, W)`` -> ``(B, num_classes)``."""

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(
            in_channels, 64, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False
        )
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        # Padding 1 keeps pool2 valid for a single-frame input (T'=1).
        self.pool2 = nn.MaxPool3d((3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        cin = 64
        layers = []
        for i, kts in enumerate(I3D_TEMPORAL_KERNELS):
            width = 64 * 2**i
            blocks = []
            for j, kt in enumerate(kts):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(Bottleneck3d(cin, width, kt, stride))
                cin = width * Bottleneck3d.expansion
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> res5 features ``(B, 2048, ceil(T / 2), H / 32, W / 32)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool2(self.layer1(x))
        return self.layer4(self.layer3(self.layer2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x).mean(dim=(2, 3, 4))))


@ACTION_MODELS.register("i3d_r50", input="clip", pretrained=("torchvision",))
def i3d_r50(num_classes: int, pretrained: str | None = None, in_channels: int = 3,
            dropout: float = 0.5) -> nn.Module:  # fmt: skip
    """``I3DResNet50``: 27.2M params + the head.

    ``pretrained``: a 2D ResNet-50 state dict (inflated), an I3D state dict saved from this model,
    or "torchvision" (ImageNet ResNet-50, inflated)."""
    model = I3DResNet50(num_classes, in_channels=in_channels, dropout=dropout)
    return load_pretrained(
        model, pretrained, name="i3d_r50", head=("fc.",), convert=inflate_state_dict
    )
