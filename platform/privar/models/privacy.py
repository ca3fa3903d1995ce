"""2D privacy models: the adversaries that try to read private attributes off encoded frames.

BDQ (paper 001, Sec. 4.2) trains a 2D ResNet-50 privacy model, initialised from ImageNet, on the
encoder's output frames, and Sec. 5.2 attacks the encoder with ten image classifiers
(:data:`DEFAULT_ADVERSARIES`; all from ImageNet) to show that privacy holds against adversaries
the encoder never saw. The farm trains all of them; on a CPU it uses the babies
(:data:`BABY_ADVERSARIES`).

Contract of every privacy model: input float ``(N, C, H, W)`` frames (a clip's frames folded into
N), output logits ``(N, num_classes)``. Factory: ``factory(num_classes, pretrained=None, **kw)``;
the classifier head is built for ``num_classes`` (an ImageNet head is dropped on loading).
All torchvision models accept 32x32 inputs and the babies any size from 4x4 (the ViT and the
Mixer from 1x1); ``vit_b_16`` needs ``image_size`` (a multiple of its 16-pixel patch) equal to
the input size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from privar.errors import UserError
from privar.models import PRIVACY_MODELS
from privar.models.action import MeanMaxPool
from privar.models.weights import StateDict, load_pretrained
from privar.study import DataConfig

# torchvision is imported inside the builders that use it, here and in the other model modules:
# importing it takes 1.3 s on 2 cores (it pulls in torch._dynamo), which every CLI call and every
# Ray worker would pay whether or not it builds a torchvision model.

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
BABY_ADVERSARIES: tuple[str, ...] = ("baby2d", "baby2d_wide", "baby_vit", "baby_mlp")

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
        import torchvision.models as tvm

        model = getattr(tvm, arch)(weights=None, num_classes=num_classes)
        return load_pretrained(model, pretrained, name=arch, head=(_HEADS[arch],))

    factory.__name__ = factory.__qualname__ = arch
    factory.__doc__ = f"torchvision ``{arch}``: ``(N, 3, H, W)`` -> ``(N, num_classes)``."


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
    import torchvision.models as tvm
    from torchvision.models.vision_transformer import interpolate_embeddings

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


class PatchEmbed(nn.Module):
    """``(N, C, H, W)`` -> patch embeddings ``(N, dim, ceil(H / patch), ceil(W / patch))``: the
    frame zero-padded on the right and bottom to a multiple of ``patch``, one linear map per
    ``patch`` x ``patch`` patch (a strided convolution), then batch norm. The norm makes the
    tokens indifferent to the scale of what an encoder outputs, as the CNNs' conv-BN stems are:
    an untrained BDQ's differences have a standard deviation of 0.01, and without it the ViT and
    the Mixer learnt nothing from them (chance) where the CNNs read identity above chance."""

    def __init__(self, in_channels: int, dim: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch, bias=False)
        self.norm = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch
        h, w = x.shape[-2:]
        return self.norm(self.proj(F.pad(x, (0, -w % p, 0, -h % p))))


def _zero_head(dim: int, num_classes: int) -> nn.Linear:
    """A linear head starting at zero, as ViT's and MLP-Mixer's: every class starts equal, and
    a transformer trained at a CNN's learning rate (the farm's ``train.lr``) no longer locks onto
    a random first guess (it did for 3 seeds of 5 at lr 1e-2 without it)."""
    head = nn.Linear(dim, num_classes)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


def sincos_positions(dim: int, grid: int) -> torch.Tensor:
    """2D sine-cosine position embedding ``(1, dim, grid, grid)`` (MAE's): a quarter of the
    channels each for sin and cos of the row, then of the column, at geometric frequencies.
    ``dim`` must be a multiple of 4. The baby ViT starts from it: from a near-zero start its
    tokens know no position and a few dozen steps do not teach it where things are."""
    q = dim // 4
    omega = 1.0 / 100.0 ** (torch.arange(q, dtype=torch.float32) / q)  # (q,)
    angle = torch.arange(grid, dtype=torch.float32)[:, None] * omega  # (grid, q)
    axis = torch.cat([angle.sin(), angle.cos()], 1)  # (grid, 2q)
    rows = axis[:, None, :].expand(grid, grid, 2 * q)
    cols = axis[None, :, :].expand(grid, grid, 2 * q)
    return torch.cat([rows, cols], -1).permute(2, 0, 1).unsqueeze(0).contiguous()


class BabyViT(nn.Module):
    """A tiny vision transformer: ``(N, C, H, W)`` -> ``(N, num_classes)``, any H, W.

    ``patch`` x ``patch`` patches embedded to ``dim`` (:class:`PatchEmbed`,
    ``(N, dim, H/patch, W/patch)``), plus a learned position embedding of ``grid`` x ``grid``
    (the patch grid of a 32x32 frame at patch 4; initialised with :func:`sincos_positions`)
    resized bicubically to the input's patch grid, ``depth`` pre-norm transformer layers
    (``heads`` heads, MLP ``2 * dim``) over the ``(N, L, dim)`` tokens, mean and max pooling over
    tokens (``(N, 2 * dim)``; as the CNNs', so a small actor or the few moving pixels of a BDQ
    frame are not averaged away), a LayerNorm and a zero-initialised linear head. Attention sees
    the whole frame at once: an adversary unlike a CNN's local filters."""

    def __init__(self, num_classes: int, in_channels: int = 3, patch: int = 4, dim: int = 64,
                 depth: int = 2, heads: int = 4, grid: int = 8) -> None:  # fmt: skip
        super().__init__()
        if dim % 4 or dim % heads:
            raise UserError(f"baby_vit: dim {dim} must be a multiple of 4 and of heads {heads}")
        self.embed = PatchEmbed(in_channels, dim, patch)
        self.pos = nn.Parameter(sincos_positions(dim, grid))
        self.blocks = nn.Sequential(*(
            nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(depth)))  # fmt: skip
        self.pool = MeanMaxPool()
        self.norm = nn.LayerNorm(2 * dim)
        self.head = _zero_head(2 * dim, num_classes)

    def positions(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position embedding ``(1, dim, gh, gw)`` for a ``grid`` of patches."""
        if tuple(self.pos.shape[-2:]) == grid:
            return self.pos
        return F.interpolate(self.pos, size=grid, mode="bicubic", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)  # (N, D, gh, gw)
        x = x + self.positions(tuple(x.shape[-2:]))
        x = self.blocks(x.flatten(2).transpose(1, 2))  # (N, gh * gw, D)
        return self.head(self.norm(self.pool(x.transpose(1, 2))))  # (N, 2D) -> classes


class MixerBlock(nn.Module):
    """One MLP-Mixer layer on ``(N, L, D)`` tokens: an MLP across the L tokens (per channel),
    then an MLP across the D channels (per token), each pre-norm and residual."""

    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(nn.Linear(tokens, token_hidden), nn.GELU(),
                                       nn.Linear(token_hidden, tokens))  # fmt: skip
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = nn.Sequential(nn.Linear(dim, channel_hidden), nn.GELU(),
                                         nn.Linear(channel_hidden, dim))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class BabyMixer(nn.Module):
    """A tiny MLP-Mixer: ``(N, C, H, W)`` -> ``(N, num_classes)``, any H, W.

    ``patch`` x ``patch`` patches embedded to ``dim`` (:class:`PatchEmbed`), the patch grid
    average-pooled (adaptively) to ``grid`` x ``grid`` tokens (a no-op for 32x32 frames at patch
    4; the token MLPs need a fixed count), ``depth`` Mixer layers on the
    ``(N, grid * grid, dim)`` tokens, mean and max pooling over tokens (``(N, 2 * dim)``), a
    LayerNorm and a zero-initialised linear head. No convolution past the patch embedding and no
    attention: only MLPs."""

    def __init__(self, num_classes: int, in_channels: int = 3, patch: int = 4, dim: int = 64,
                 depth: int = 2, grid: int = 8) -> None:  # fmt: skip
        super().__init__()
        self.grid = grid
        self.embed = PatchEmbed(in_channels, dim, patch)
        self.blocks = nn.Sequential(*(MixerBlock(grid * grid, dim, grid * grid, 2 * dim)
                                      for _ in range(depth)))  # fmt: skip
        self.pool = MeanMaxPool()
        self.norm = nn.LayerNorm(2 * dim)
        self.head = _zero_head(2 * dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)  # (N, D, gh, gw)
        if tuple(x.shape[-2:]) != (self.grid, self.grid):
            x = F.adaptive_avg_pool2d(x, self.grid)
        x = self.blocks(x.flatten(2).transpose(1, 2))  # (N, grid * grid, D)
        return self.head(self.norm(self.pool(x.transpose(1, 2))))  # (N, 2D) -> classes


@PRIVACY_MODELS.register("baby_vit", input="frames")
def baby_vit(num_classes: int, pretrained: str | None = None, in_channels: int = 3, patch: int = 4,
             dim: int = 64, depth: int = 2, heads: int = 4) -> nn.Module:  # fmt: skip
    """``BabyViT``: 4x4 patches, dim 64, 2 layers of 4 heads (~75k params), any frame size."""
    model = BabyViT(num_classes, in_channels, patch, dim, depth, heads)
    return load_pretrained(model, pretrained, name="baby_vit", head=("head.",))


@PRIVACY_MODELS.register("baby_mlp", input="frames")
def baby_mlp(num_classes: int, pretrained: str | None = None, in_channels: int = 3,
             patch: int = 4, dim: int = 64, depth: int = 2) -> nn.Module:  # fmt: skip
    """``BabyMixer``: 4x4 patches, dim 64, 2 Mixer layers on 8x8 tokens (~55k params), any
    frame size."""
    model = BabyMixer(num_classes, in_channels, patch, dim, depth)
    return load_pretrained(model, pretrained, name="baby_mlp", head=("head.",))
