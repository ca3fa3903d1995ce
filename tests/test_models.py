"""The model zoo: one contract test per registry over every registered name (timm's
test_models.py), plus STAT attention outputs, pretrained loading and I3D inflation.

CPU only, tiny inputs, nothing downloads: "torchvision" weights are served from a torch hub cache
the tests populate themselves.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from privar.encoders import ENCODERS
from privar.errors import UserError
from privar.models import (
    ACTION_MODELS,
    BABY_ADVERSARIES,
    DEFAULT_ADVERSARIES,
    PRIVACY_MODELS,
    RECON_MODELS,
    AttentionOutput,
    create_action_model,
    create_reconstruction_model,
    list_action_models,
    list_privacy_models,
    list_reconstruction_models,
    preferred_memory_format,
)
from privar.models.stat import StatNet
from privar.models.weights import TORCHVISION_SOURCES, torchvision_weights
from privar.study import DataConfig

STAT_NAMES = {"stat_resnet34", "stat_r2plus1d_18", "baby_stat"}
K = 2  # segments in the STAT tests
NUM_CLASSES = 5
# The study's data section the contract tests build for: K segments of 4 frames, 32x32.
TEST_DATA = DataConfig(clip_len=4, segments=K, size=(32, 32))


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    # One intra-op thread: on a busy 2-core machine OpenMP's barrier waits for the other core at
    # every op and a tiny forward takes 10x longer with 2 threads than with 1.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def action_input(model: nn.Module) -> torch.Tensor:
    """(2, 3, T, 32, 32): T = 8, or K * F for the K-segment models."""
    t = model.num_segments * model.frames_per_segment if isinstance(model, StatNet) else 8
    return torch.randn(2, 3, t, 32, 32)


def make_action(name: str, num_classes: int = NUM_CLASSES, **kw) -> nn.Module:
    """Built as the platform builds it: arguments from the entry's config for TEST_DATA, then
    the test's own ``kw``."""
    return ACTION_MODELS.create(
        name, **ACTION_MODELS.arguments(name, TEST_DATA, kw, num_classes=num_classes)
    )


def make_privacy(name: str, num_classes: int = NUM_CLASSES, **kw) -> nn.Module:
    return PRIVACY_MODELS.create(
        name, **PRIVACY_MODELS.arguments(name, TEST_DATA, kw, num_classes=num_classes)
    )


def make(kind: str, name: str, **kw) -> nn.Module:
    """Build registered model ``name`` of ``kind`` (action, privacy, recon) for the tests."""
    if kind == "action":
        return make_action(name, **kw)
    if kind == "privacy":
        return make_privacy(name, **kw)
    return create_reconstruction_model(name, **kw)


def check_forward_backward(model: nn.Module, x: torch.Tensor, shape: tuple[int, ...]) -> None:
    """Output shape, finite values, and a finite gradient for every trainable parameter."""
    model.train()
    out = model(x)
    assert out.shape == shape
    assert torch.isfinite(out).all()
    (out.float() ** 2).mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    bad = [
        n for n, p in model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()
    ]
    assert bad == []


# --------------------------------------------------------------------------- contracts


def test_registries_list_the_zoo() -> None:
    assert set(list_action_models()) == {
        "r3d_18", "mc3_18", "r2plus1d_18", "i3d_r50", "baby3d", *STAT_NAMES,
    }  # fmt: skip
    assert set(list_privacy_models()) == {*DEFAULT_ADVERSARIES, *BABY_ADVERSARIES}
    assert len(DEFAULT_ADVERSARIES) == 10
    assert list_reconstruction_models() == ["baby_unet3d", "unet3d"]
    with pytest.raises(UserError, match="unknown action model 'nope'"):
        create_action_model("nope", 2)


@pytest.mark.parametrize("name", ACTION_MODELS.names())
def test_action_contract(name: str) -> None:
    torch.manual_seed(0)
    cfg = ACTION_MODELS.entry(name).cfg
    model = make_action(name)
    assert cfg.input == "clip"
    assert isinstance(model, StatNet) == (name in STAT_NAMES)
    assert cfg.attention == callable(getattr(model, "forward_attention", None))
    check_forward_backward(model, torch.randn(cfg.test_input(TEST_DATA)), (2, NUM_CLASSES))


@pytest.mark.parametrize("name", PRIVACY_MODELS.names())
def test_privacy_contract(name: str) -> None:
    torch.manual_seed(0)
    cfg = PRIVACY_MODELS.entry(name).cfg
    assert cfg.input == "frames" and cfg.test_input(TEST_DATA) == (2, 3, 32, 32)
    check_forward_backward(make_privacy(name), torch.randn(cfg.test_input(TEST_DATA)),
                           (2, NUM_CLASSES))  # fmt: skip


@pytest.mark.parametrize("registry", [ACTION_MODELS, PRIVACY_MODELS, RECON_MODELS, ENCODERS],
                         ids=lambda r: r.kind)  # fmt: skip
def test_entries_describe_themselves(registry) -> None:
    """What validation and the loops read off an entry's config holds for its factory: every
    option spelled out (no ``**kw``), derived arguments are options of the factory, and the
    torchvision weights it claims are the ones privar knows how to load."""
    for name in registry.names():
        entry = registry.entry(name)
        params = inspect.signature(entry.factory).parameters
        assert not any(p.kind is p.VAR_KEYWORD for p in params.values()), name
        assert set(entry.cfg.derived(TEST_DATA)) <= set(params), name
        if registry is not ENCODERS:
            assert ("torchvision" in entry.cfg.pretrained) == (name in TORCHVISION_SOURCES), name
    assert {n for n in PRIVACY_MODELS.names() if PRIVACY_MODELS.entry(n).cfg.square_multiple} == {
        "vit_b_16"}  # fmt: skip


@pytest.mark.parametrize("name", RECON_MODELS.names())
def test_reconstruction_contract(name: str) -> None:
    torch.manual_seed(0)
    model = create_reconstruction_model(name)
    check_forward_backward(model, torch.randn(1, 3, 4, 16, 16), (1, 3, 4, 16, 16))
    # Other input channels, a single frame, and H, W not divisible by 2**depth (padded inside).
    model = create_reconstruction_model(name, in_channels=1).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 1, 10, 14))
    assert out.shape == (2, 3, 1, 10, 14)
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize(
    "kind,name",
    [
        ("action", "baby3d"),
        ("action", "baby_stat"),
        ("action", "i3d_r50"),
        ("action", "r2plus1d_18"),
    ]
    + [
        ("privacy", n)
        for n in ("baby2d", "baby_vit", "baby_mlp", "resnet18", "mobilenet_v3_large", "vit_b_16")
    ]  # fmt: skip
    + [("recon", "baby_unet3d")],
)
def test_channels_last_and_autocast(kind: str, name: str) -> None:
    torch.manual_seed(0)
    model = make(kind, name)
    if kind == "action":
        x = action_input(model)
    else:
        x = torch.randn(2, 3, 32, 32) if kind == "privacy" else torch.randn(1, 3, 4, 16, 16)
    fmt = preferred_memory_format(model)
    assert fmt != torch.contiguous_format
    model = model.to(memory_format=fmt).eval()
    x = x.contiguous(memory_format=torch.channels_last_3d if x.dim() == 5 else torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype in (torch.bfloat16, torch.float32)
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize("name", BABY_ADVERSARIES)
def test_baby_adversaries_take_any_frame_size(name: str) -> None:
    """The farm attacks encoders whatever size their frames come out: odd, non-square, or
    smaller than the 32x32 the babies are sized for (the CNNs need 4x4 at least)."""
    model = make_privacy(name).eval()
    sizes = [(24, 40), (17, 9), (64, 64)] + ([] if name.startswith("baby2d") else [(3, 5)])
    with torch.no_grad():
        for h, w in sizes:
            assert model(torch.randn(2, 3, h, w)).shape == (2, NUM_CLASSES), (h, w)


def test_baby_adversaries_differ_in_kind() -> None:
    """Beyond the two CNNs: a ViT with attention and position embeddings resized to the
    input's patch grid, and an MLP-Mixer with no convolution past its patch embedding."""
    from privar.models.privacy import BabyMixer, BabyViT

    assert {"baby_vit", "baby_mlp"} <= set(BABY_ADVERSARIES)
    vit, mixer = make_privacy("baby_vit"), make_privacy("baby_mlp")
    assert isinstance(vit, BabyViT) and isinstance(mixer, BabyMixer)
    assert any(isinstance(m, nn.MultiheadAttention) for m in vit.modules())
    assert vit.positions((8, 8)) is vit.pos  # a 32x32 frame's 4x4 patches: as learned
    assert vit.positions((6, 10)).shape == (1, 64, 6, 10)
    convs = [m for m in mixer.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [mixer.embed.proj] and mixer.embed.proj.kernel_size == (4, 4)
    assert mixer.embed.proj.stride == (4, 4)  # a linear map per 4x4 patch
    assert not any(isinstance(m, nn.MultiheadAttention) for m in mixer.modules())


# --------------------------------------------------------------------------- STAT attention

BLOCK_CHANNELS = {
    "stat_resnet34": [64, 128, 256, 512],
    "stat_r2plus1d_18": [64, 128, 256, 512],
    "baby_stat": [8, 16, 32, 64],
}


@pytest.mark.parametrize("name", sorted(STAT_NAMES))
def test_stat_forward_attention(name: str) -> None:
    torch.manual_seed(0)
    model = make_action(name).eval()
    x = action_input(model)
    with torch.no_grad():
        att = model.forward_attention(x)
        logits = model(x)
    assert isinstance(att, AttentionOutput)
    assert att.logits.shape == (2, NUM_CLASSES)
    torch.testing.assert_close(att.logits, logits)
    assert att.temporal.shape == (2, K)
    assert att.temporal_hidden.shape == (2, 64)
    torch.testing.assert_close(att.temporal_weights.sum(dim=-1), torch.ones(2))
    assert [a.shape[1] for a in att.blocks] == BLOCK_CHANNELS[name]
    ndim = 5 if name == "stat_r2plus1d_18" else 4  # 3D backbone keeps a time axis
    assert all(a.dim() == ndim and a.shape[0] == 2 * K for a in att.blocks)
    # Block i halves the spatial size of block i - 1 (i >= 1).
    sizes = [a.shape[-1] for a in att.blocks]
    assert sizes[1:] == [s // 2 for s in sizes[:-1]]
    with pytest.raises(ValueError, match="num_segments"):
        model(x[:, :, :-1])


def test_stat_2d_averages_frames_of_a_segment() -> None:
    """F > 1 on a 2D backbone: a segment's per-frame activations are averaged, so a segment of
    two identical frames gives the activations of one."""
    torch.manual_seed(0)
    one = make_action("baby_stat", frames_per_segment=1).eval()
    two = make_action("baby_stat", frames_per_segment=2).eval()
    two.load_state_dict(one.state_dict())
    x = torch.randn(2, 3, K, 32, 32)
    with torch.no_grad():
        a1 = one.forward_attention(x)
        a2 = two.forward_attention(x.repeat_interleave(2, dim=2))
    assert [a.shape for a in a2.blocks] == [a.shape for a in a1.blocks]
    torch.testing.assert_close(a2.logits, a1.logits)
    torch.testing.assert_close(a2.temporal, a1.temporal)


# --------------------------------------------------------------------------- pretrained weights


@pytest.mark.parametrize(
    "kind,name",
    [("action", n) for n in ACTION_MODELS.names()]
    + [("privacy", n) for n in PRIVACY_MODELS.names()]
    + [("recon", n) for n in RECON_MODELS.names()],
)
def test_pretrained_file_round_trip(kind: str, name: str, tmp_path: Path) -> None:
    """Same num_classes: every tensor comes back. Other num_classes: all but the head."""
    torch.manual_seed(0)
    source = make(kind, name)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    want = source.state_dict()
    same = make(kind, name, pretrained=str(path))  # initialised with other random numbers
    for key, value in same.state_dict().items():
        torch.testing.assert_close(value, want[key], rtol=0, atol=0, msg=key)
    if kind == "recon":
        return
    other = make(kind, name, num_classes=NUM_CLASSES + 2, pretrained=str(path))
    head = [k for k, v in other.state_dict().items() if v.shape != want[k].shape]
    assert head and all(other.state_dict()[k].shape[0] == NUM_CLASSES + 2 for k in head)
    for key, value in other.state_dict().items():
        if key not in head:
            torch.testing.assert_close(value, want[key], rtol=0, atol=0, msg=key)


def test_stat_loads_a_backbone_file_and_other_k(tmp_path: Path) -> None:
    torch.manual_seed(0)
    resnet = tvm.resnet34(weights=None)  # e.g. a local copy of the ImageNet weights
    torch.save(resnet.state_dict(), tmp_path / "resnet34.pt")
    model = make_action("stat_resnet34", pretrained=str(tmp_path / "resnet34.pt"))
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, resnet.state_dict()[key], rtol=0, atol=0)
    # A file from another K keeps the backbone and classifier, with a fresh TAM.
    baby = make_action("baby_stat", num_segments=3)
    torch.save(baby.state_dict(), tmp_path / "k3.pt")
    k2 = make_action("baby_stat", num_segments=2, pretrained=str(tmp_path / "k3.pt"))
    torch.testing.assert_close(k2.fc.weight, baby.fc.weight)
    assert k2.tam.fc2.out_features == 2


def test_bad_pretrained_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(
        UserError, match=f"{re.escape(str(missing))}: pretrained weights file not found"
    ):
        make_action("baby3d", pretrained=str(missing))
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(
        UserError, match=f"{re.escape(str(garbage))}: not a readable torch state dict"
    ):
        make_privacy("baby2d", pretrained=str(garbage))
    wrong = tmp_path / "baby2d.pt"
    torch.save(make_privacy("baby2d").state_dict(), wrong)
    with pytest.raises(
        UserError, match=f"{re.escape(str(wrong))}: incompatible .*shape mismatch"
    ) as err:
        make_privacy("baby2d_wide", pretrained=str(wrong))
    assert "features.0.weight (16, 3, 3, 3) vs (32, 3, 3, 3)" in str(err.value)
    with pytest.raises(
        UserError, match=f"{re.escape(str(wrong))}: incompatible with Baby3D: missing keys"
    ):
        make_action("baby3d", pretrained=str(wrong))
    with pytest.raises(UserError, match="missing keys: .*unexpected keys"):
        create_reconstruction_model("baby_unet3d", pretrained=str(wrong))
    with pytest.raises(UserError, match="baby2d.*no torchvision weights"):
        make_privacy("baby2d", pretrained="torchvision")


EXPECTED_WEIGHTS = {
    "r3d_18": "R3D_18_Weights.KINETICS400_V1",
    "mc3_18": "MC3_18_Weights.KINETICS400_V1",
    "r2plus1d_18": "R2Plus1D_18_Weights.KINETICS400_V1",
    "i3d_r50": "ResNet50_Weights.IMAGENET1K_V2",  # 2D ImageNet weights, inflated
    "stat_resnet34": "ResNet34_Weights.IMAGENET1K_V1",
    "stat_r2plus1d_18": "R2Plus1D_18_Weights.KINETICS400_V1",
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet50": "ResNet50_Weights.IMAGENET1K_V2",
    "resnet101": "ResNet101_Weights.IMAGENET1K_V2",
    "resnext50_32x4d": "ResNeXt50_32X4D_Weights.IMAGENET1K_V2",
    "wide_resnet50_2": "Wide_ResNet50_2_Weights.IMAGENET1K_V2",
    "mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
    "shufflenet_v2_x1_0": "ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1",
    "densenet121": "DenseNet121_Weights.IMAGENET1K_V1",
    "efficientnet_b0": "EfficientNet_B0_Weights.IMAGENET1K_V1",
    "vit_b_16": "ViT_B_16_Weights.IMAGENET1K_V1",
}


def test_torchvision_weights_enum_per_model() -> None:
    for name in list_action_models() + list_privacy_models() + list_reconstruction_models():
        if name.startswith("baby") or name in RECON_MODELS:
            with pytest.raises(UserError, match="no torchvision weights"):
                torchvision_weights(name)
        else:
            assert str(torchvision_weights(name)) == EXPECTED_WEIGHTS[name], name


def _populate_hub_cache(name: str, state: dict, torch_home: Path) -> None:
    """Put ``state`` where torch.hub looks before downloading ``name``'s torchvision weights."""
    url = torchvision_weights(name).url
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(state, cache / os.path.basename(url))


def test_pretrained_torchvision_from_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    imagenet = tvm.resnet18(weights=None)  # 1000 classes, as the real file
    _populate_hub_cache("resnet18", imagenet.state_dict(), tmp_path)
    model = make_privacy("resnet18", pretrained="torchvision")
    torch.testing.assert_close(model.layer4[1].conv2.weight, imagenet.layer4[1].conv2.weight)
    assert model.fc.out_features == NUM_CLASSES
    # ViT at 32x32 from 224x224 weights: position embeddings are interpolated to 2x2 + 1.
    vit = tvm.vit_b_16(weights=None)
    _populate_hub_cache("vit_b_16", vit.state_dict(), tmp_path)
    small = make_privacy("vit_b_16", pretrained="torchvision")
    assert small.encoder.pos_embedding.shape == (1, 5, 768)
    torch.testing.assert_close(small.conv_proj.weight, vit.conv_proj.weight)
    with pytest.raises(UserError, match="image_size 40 must be a multiple of 16"):
        make_privacy("vit_b_16", image_size=40)


# --------------------------------------------------------------------------- I3D inflation


@pytest.fixture(scope="module")
def resnet50_2d() -> nn.Module:
    """A 2D ResNet-50 with random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    net = tvm.resnet50(weights=None)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.1, 0.1)
    return net.eval()


def test_i3d_inflation_from_a_2d_resnet50(resnet50_2d: nn.Module, tmp_path: Path) -> None:
    """The defining property of I3D inflation: a clip that is constant in time gives the 2D
    network's activations on its frame (away from the temporal borders, where zero padding
    differs)."""
    path = tmp_path / "resnet50_2d.pt"
    torch.save(resnet50_2d.state_dict(), path)
    i3d = create_action_model("i3d_r50", 1000, pretrained=str(path)).eval()
    # Kernels: repeated over time and divided by the temporal size, so they sum back to 2D.
    assert i3d.conv1.weight.shape == (64, 3, 5, 7, 7)
    torch.testing.assert_close(i3d.conv1.weight.sum(dim=2), resnet50_2d.conv1.weight)
    torch.testing.assert_close(i3d.fc.weight, resnet50_2d.fc.weight)

    frame = torch.randn(1, 3, 32, 32)
    clip = frame.unsqueeze(2).expand(-1, -1, 40, -1, -1)
    with torch.no_grad():
        stem2d = resnet50_2d.conv1(frame)
        stem3d = i3d.conv1(clip)
        # Every frame whose 5-frame kernel stays inside the clip equals the 2D stem output.
        for t in range(2, 38):
            torch.testing.assert_close(stem3d[:, :, t], stem2d, rtol=1e-4, atol=1e-4)
        trunk2d = nn.Sequential(*list(resnet50_2d.children())[:-2])
        pooled2d = trunk2d(frame).mean(dim=(2, 3))  # (1, 2048)
        pooled3d = i3d.forward_features(clip).mean(dim=(3, 4))  # (1, 2048, 20)
    # res5 time steps 8..11 see no padded frame (the temporal receptive field is ~18 frames at
    # the input on each side): the spatially pooled features equal the 2D network's.
    scale = pooled2d.abs().max()
    for t in range(8, 12):
        torch.testing.assert_close(pooled3d[:, :, t] / scale, pooled2d / scale, rtol=0, atol=1e-5)


def test_i3d_from_torchvision_weights_inflates(
    resnet50_2d: nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _populate_hub_cache("i3d_r50", resnet50_2d.state_dict(), tmp_path)
    i3d = create_action_model("i3d_r50", NUM_CLASSES, pretrained="torchvision")
    assert i3d.layer1[0].conv1.weight.shape == (64, 64, 3, 1, 1)
    torch.testing.assert_close(
        i3d.layer1[0].conv1.weight.sum(dim=2), resnet50_2d.layer1[0].conv1.weight
    )
    assert i3d.fc.out_features == NUM_CLASSES


# --------------------------------------------------------------------------- babies learn


@pytest.mark.parametrize(
    "kind,name",
    [("action", "baby3d"), ("action", "baby_stat")] + [("privacy", n) for n in BABY_ADVERSARIES],
)
def test_baby_models_learn_a_toy_task(kind: str, name: str) -> None:
    """A few Adam steps separate bright-left from bright-right inputs: the babies train on CPU."""
    torch.manual_seed(0)
    model = make(kind, name, num_classes=2)
    frames = action_input(model).shape[2:3] if kind == "action" else ()
    y = torch.arange(16) % 2
    x = torch.randn(16, 3, *frames, 32, 32) * 0.5
    x[y == 0, ..., :16] += 1.0
    x[y == 1, ..., 16:] += 1.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
