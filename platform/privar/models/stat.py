"""STAT's K-segment action models with a temporal attention module (paper 002, Sec. 3.1-3.3).

A video is split into K segments (the paper uses K = 4 and 8) of F consecutive frames. A shared
backbone turns each segment into a feature vector f_k (512-d for both backbones); the temporal
attention module (TAM, Sec. 3.1, Fig. 3) scores the segments and the video-level logits are the
classifier applied to the attention-weighted sum of the segment features.

Backbones (Sec. 3.2): ``stat_resnet34`` is a 2D ResNet-34 applied to each frame (F = 1 by
default; with F > 1 the per-frame activations of a segment are averaged), ``stat_r2plus1d_18`` an
R(2+1)D-18 applied to each segment of F = 5 frames, ``baby_stat`` a tiny 2D CNN for CPU.

TAM, our reading of the paper: "we use the feature of each interval as input and stack all
features together to perform two fully-connected layers, 64-dimensional and K-dimensional" and
"we put 512-dimensional features of each interval into the FC layers". So the K segment features
are *stacked* (concatenated in segment order) into one (K * 512)-d vector, then
FC(K * 512 -> 64) -> ReLU -> FC(64 -> K) -> softmax over K. Concatenation, not pooling: a
pooled (mean) input would be blind to which segment holds which content, so it could not find
"the key segments" the paper's Fig. 5 shows it finding.

Spatial attention transfer (SAT, Sec. 3.3) compares the outputs of the 4 ResNet blocks; temporal
attention transfer (TAT, Eq. 3) compares the two TAM FC outputs. :meth:`StatNet.forward_attention`
returns all of them in an :class:`AttentionOutput`.

Contract: input float ``(B, C, K * F, H, W)`` with frames grouped by segment (segment k is frames
``k*F .. k*F + F - 1``); ``forward`` returns logits ``(B, num_classes)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from privar.models import ACTION_MODELS
from privar.models.weights import StateDict, load_pretrained
from privar.study import DataConfig


@dataclass
class AttentionOutput:
    """What attention transfer needs from one forward pass (B videos, K segments).

    logits: ``(B, num_classes)`` video-level logits.
    blocks: the outputs of the 4 backbone blocks (ResNet layer1..layer4), segments folded into
        the batch: 2D ``(B * K, C_i, H_i, W_i)``, 3D ``(B * K, C_i, T_i, H_i, W_i)``.
    temporal: ``(B, K)`` TAM logits (output of FC2, before the softmax).
    temporal_hidden: ``(B, 64)`` output of the TAM's first FC layer (before its ReLU); TAT sums
        over both FC outputs (paper 002, Eq. 3 and Table 1 "FC1-FC2").
    """

    logits: torch.Tensor
    blocks: list[torch.Tensor]
    temporal: torch.Tensor
    temporal_hidden: torch.Tensor

    @property
    def temporal_weights(self) -> torch.Tensor:
        """``(B, K)`` segment importance: softmax of ``temporal`` over K, rows sum to 1."""
        return self.temporal.softmax(dim=-1)


class TemporalAttention(nn.Module):
    """TAM: ``(B, K, D)`` segment features -> (``(B, hidden)`` FC1 output, ``(B, K)`` logits)."""

    def __init__(self, feat_dim: int, num_segments: int, hidden: int = 64) -> None:
        super().__init__()
        self.num_segments = num_segments
        self.fc1 = nn.Linear(num_segments * feat_dim, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_segments)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.fc1(feats.flatten(1))  # stacked in segment order: (B, K * D)
        return hidden, self.fc2(self.relu(hidden))


class ContrastConv2d(nn.Conv2d):
    """A 2D convolution whose kernels sum to zero over (H, W) for each input channel: it
    answers to edges, never to flat colour (see :class:`privar.models.action.ContrastConv3d`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight - self.weight.mean(dim=(2, 3), keepdim=True)
        return self._conv_forward(x, w, self.bias)


class BabyTrunk(nn.Module):
    """Tiny 2D CNN with ResNet's layout (stem + 4 blocks) for CPU: ``(N, C, H, W)`` ->
    blocks of widths w, 2w, 4w, 8w at strides 1, 2, 4, 8."""

    def __init__(self, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()

        def unit(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )

        self.stem = unit(in_channels, width, 1)
        # A zero-sum stem (as baby3d's): from scratch on a few hundred clips a plain stem
        # latches onto flat colour (background, clothes) and never finds the limbs.
        self.stem[0] = ContrastConv2d(in_channels, width, 3, padding=1, bias=False)
        self.layer1 = unit(width, width, 1)
        self.layer2 = unit(width, 2 * width, 2)
        self.layer3 = unit(2 * width, 4 * width, 2)
        self.layer4 = unit(4 * width, 8 * width, 2)


def _trunk_blocks(backbone: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Run a ResNet-shaped trunk; returns the outputs of layer1..layer4."""
    if hasattr(backbone, "stem"):  # torchvision VideoResNet, BabyTrunk
        x = backbone.stem(x)
    else:  # torchvision 2D ResNet keeps its stem as separate modules (and its state-dict keys)
        x = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(x))))
    blocks = []
    for layer in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4):
        x = layer(x)
        blocks.append(x)
    return blocks


class StatNet(nn.Module):
    """K-segment backbone + TAM + linear classifier.

    ``backbone``: a ResNet-shaped trunk (``layer1..layer4``; a 2D one sees frames, a 3D one
    segments of F frames). ``feat_dim``: channels of ``layer4``. ``video_backbone``: True for 3D.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feat_dim: int,
        num_classes: int,
        num_segments: int,
        frames_per_segment: int,
        video_backbone: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_segments < 1 or frames_per_segment < 1:
            raise ValueError("num_segments and frames_per_segment must be >= 1")
        self.num_segments = num_segments
        self.frames_per_segment = frames_per_segment
        self.video_backbone = video_backbone
        self.backbone = backbone
        self.tam = TemporalAttention(feat_dim, num_segments)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(feat_dim, num_classes)

    def forward_attention(self, x: torch.Tensor) -> AttentionOutput:
        """``(B, C, K * F, H, W)`` -> :class:`AttentionOutput` (logits, 4 blocks, TAM outputs)."""
        b, c, t, h, w = x.shape
        k, f = self.num_segments, self.frames_per_segment
        if t != k * f:
            raise ValueError(
                f"expected T = num_segments * frames_per_segment = {k} * {f} = {k * f}, got {t}"
            )
        x = x.reshape(b, c, k, f, h, w)
        if self.video_backbone:  # one (C, F, H, W) clip per segment
            blocks = _trunk_blocks(self.backbone, x.permute(0, 2, 1, 3, 4, 5).flatten(0, 1))
        else:  # one (C, H, W) image per frame; a segment's frames are averaged block by block
            blocks = _trunk_blocks(self.backbone, x.permute(0, 2, 3, 1, 4, 5).flatten(0, 2))
            if f > 1:
                blocks = [a.unflatten(0, (b * k, f)).mean(dim=1) for a in blocks]
        last = blocks[-1]
        feats = last.mean(dim=tuple(range(2, last.dim()))).unflatten(0, (b, k))  # (B, K, D)
        hidden, temporal = self.tam(feats)
        weights = temporal.softmax(dim=-1)
        video_feat = (weights.unsqueeze(-1) * feats).sum(dim=1)  # (B, D)
        logits = self.fc(self.dropout(video_feat))
        return AttentionOutput(logits, blocks, temporal, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, K * F, H, W)`` -> logits ``(B, num_classes)``."""
        return self.forward_attention(x).logits


def _backbone_prefixed(state: StateDict, model: nn.Module) -> StateDict:
    # A file holding only a backbone (e.g. torchvision's resnet34 weights) loads into .backbone;
    # its own classifier lands on "backbone.fc.", a head key the model lacks, and is dropped.
    if any(key.startswith("backbone.") for key in state):
        return state
    return {f"backbone.{key}": value for key, value in state.items()}


# A file from a model with another num_classes or K keeps a fresh classifier and TAM.
_STAT_HEAD = ("fc.", "tam.", "backbone.fc.")


def k_segments(data: DataConfig) -> dict[str, Any]:
    """A K-segment model cuts the clip into the K segments of F frames the data layer sampled:
    ``data.segments`` and ``data.clip_len``."""
    return {"num_segments": data.segments, "frames_per_segment": data.clip_len}


_STAT = {"input": "clip", "attention": True, "from_data": k_segments}


def _finish(model: StatNet, pretrained: str | None, name: str) -> StatNet:
    load_pretrained(model, pretrained, name=name, head=_STAT_HEAD, convert=_backbone_prefixed)
    return model


@ACTION_MODELS.register("stat_resnet34", **_STAT, pretrained=("torchvision",))
def stat_resnet34(
    num_classes: int,
    pretrained: str | None = None,
    num_segments: int = 4,
    frames_per_segment: int = 1,
    dropout: float = 0.0,
) -> nn.Module:
    """2D ResNet-34 per frame, K segments: ``(B, 3, K * F, H, W)`` -> ``(B, num_classes)``.
    ``pretrained="torchvision"`` loads ImageNet weights into the backbone."""
    from torchvision.models import resnet34  # lazily: see privar.models.privacy

    backbone = resnet34(weights=None)
    backbone.fc = nn.Identity()  # the classifier acts on the attention-weighted video feature
    model = StatNet(backbone, 512, num_classes, num_segments, frames_per_segment, False, dropout)
    return _finish(model, pretrained, "stat_resnet34")


@ACTION_MODELS.register("stat_r2plus1d_18", **_STAT, pretrained=("torchvision",))
def stat_r2plus1d_18(
    num_classes: int,
    pretrained: str | None = None,
    num_segments: int = 4,
    frames_per_segment: int = 5,
    dropout: float = 0.0,
) -> nn.Module:
    """R(2+1)D-18 per segment of F frames: ``(B, 3, K * F, H, W)`` -> ``(B, num_classes)``.
    ``pretrained="torchvision"`` loads Kinetics-400 weights into the backbone."""
    from torchvision.models import video

    backbone = video.r2plus1d_18(weights=None)
    backbone.fc = nn.Identity()
    model = StatNet(backbone, 512, num_classes, num_segments, frames_per_segment, True, dropout)
    return _finish(model, pretrained, "stat_r2plus1d_18")


@ACTION_MODELS.register("baby_stat", **_STAT)
def baby_stat(
    num_classes: int,
    pretrained: str | None = None,
    num_segments: int = 4,
    frames_per_segment: int = 1,
    in_channels: int = 3,
    width: int = 8,
    dropout: float = 0.0,
) -> nn.Module:
    """Tiny 2D CNN (4 blocks, 8 * width features) per frame + the same TAM, for CPU."""
    backbone = BabyTrunk(in_channels, width)
    model = StatNet(backbone, 8 * width, num_classes, num_segments, frames_per_segment, False,
                    dropout)  # fmt: skip
    return _finish(model, pretrained, "baby_stat")
