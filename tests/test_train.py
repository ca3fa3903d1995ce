"""The three training schemes on real (tiny) videos through the real Ray Data stream: they run,
report per epoch, really update what they should, and resume from their checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import colour_motion_videos
from privar.data.dataset import StudyData
from privar.data.sampling import ClipSpec
from privar.encoders import create_encoder
from privar.models import create_action_model, create_privacy_model
from privar.study import AdversarialConfig, AttentionConfig, DistillConfig, TrainConfig
from privar.train.adversarial import train_adversarial
from privar.train.attention import train_attention
from privar.train.common import lr_factor
from privar.train.distill import train_distill
from privar.train.steps import to_input

CPU = torch.device("cpu")
CFG = TrainConfig(epochs=2, batch_size=4, optimizer="adam", lr=1e-2, schedule="none")


@pytest.fixture(scope="module")
def data(tmp_path_factory, ray_local) -> StudyData:
    """12 videos of 10 frames, 32x40: 8 train, 4 validation."""
    root = tmp_path_factory.mktemp("videos")
    records = colour_motion_videos(root, 12, 8, (32, 40), 10)
    spec = ClipSpec(clip_len=4, stride=1, size=(32, 32), segments=2)  # 8 frames: 2 segments
    data = StudyData(records, spec, cache_root=root / "cache")
    data.prepare()
    return data


def _privacy() -> torch.nn.Module:
    return create_privacy_model("baby2d", num_classes=2)


def test_lr_schedules() -> None:
    cos = TrainConfig(epochs=4, schedule="cosine", lr=1.0)
    assert [round(lr_factor(e, cos), 4) for e in range(4)] == [1.0, 0.8536, 0.5, 0.1464]
    warm = dataclasses.replace(cos, warmup_epochs=1)
    assert lr_factor(0, warm) == 0.5 and lr_factor(1, warm) == 1.0
    step = TrainConfig(epochs=50, schedule="step", step_every=20, step_gamma=0.1)
    assert [lr_factor(e, step) for e in (0, 19, 20, 40)] == [1.0, 1.0, 0.1, pytest.approx(0.01)]


def test_a_channels_last_batch_reaches_a_cpu_step_contiguous() -> None:
    """The stream's clips are channels-last in memory; a CPU step gets them contiguous, in
    [0, 1], the values unchanged."""
    frames = torch.randint(0, 256, (2, 4, 6, 5, 3), dtype=torch.uint8)  # (B, T, H, W, C)
    clip = frames.permute(0, 4, 1, 2, 3)  # (B, C, T, H, W) view
    x = to_input(clip, CPU)
    assert x.dtype == torch.float32 and x.is_contiguous() and x.shape == (2, 3, 4, 6, 5)
    assert torch.equal(x, clip.float() / 255.0)


def test_adversarial_trains_the_encoder_and_resumes(data: StudyData, tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = create_encoder("bdq")
    thresholds = [p.detach().clone() for p in encoder.parameters()]
    action = create_action_model("baby3d", num_classes=2)
    seen: list[tuple[int, dict]] = []
    m = train_adversarial(data, encoder, action, _privacy, CFG, AdversarialConfig(alpha=1.0),
                          CPU, tmp_path, lambda e, x: seen.append((e, x)))  # fmt: skip
    assert [e for e, _ in seen] == [0, 1]
    assert set(m) == {"action_acc", "privacy_acc", "loss", "data_wait_frac"}
    assert 0 <= m["action_acc"] <= 1 and 0 <= m["privacy_acc"] <= 1
    # Every epoch says how long it waited for data: what MLflow shows as a starved GPU.
    assert all(0 <= x["data_wait_frac"] <= 1 for _, x in seen)
    # Step 1 moved the encoder's own parameters (sigma, thresholds).
    moved = zip(thresholds, encoder.parameters(), strict=True)
    assert any(not torch.equal(a, b.detach()) for a, b in moved)
    assert (tmp_path / "adversarial.pt").exists()

    # A longer run resumes after epoch 2 instead of starting again.
    seen.clear()
    longer = dataclasses.replace(CFG, epochs=3)
    train_adversarial(data, create_encoder("bdq"), create_action_model("baby3d", num_classes=2),
                      _privacy, longer, AdversarialConfig(alpha=1.0), CPU, tmp_path,
                      lambda e, x: seen.append((e, x)))  # fmt: skip
    assert [e for e, _ in seen] == [2]


def test_privacy_reset_builds_a_fresh_adversary(data: StudyData) -> None:
    built = []

    def privacy():
        built.append(1)
        return _privacy()

    cfg = dataclasses.replace(CFG, epochs=3)
    train_adversarial(
        data,
        create_encoder("bdq"),
        create_action_model("baby3d", num_classes=2),
        privacy,
        cfg,
        AdversarialConfig(alpha=1.0, privacy_reset_every=1),
        CPU,
    )
    assert len(built) == 3  # at the start, and before epochs 2 and 3


def test_distill_trains_the_teacher_first(data: StudyData, tmp_path: Path) -> None:
    teacher = create_action_model("baby3d", num_classes=2)
    m = train_distill(data, create_encoder("elr", resolution=(4, 4)),
                      create_action_model("baby3d", num_classes=2), teacher, _privacy, CFG,
                      DistillConfig(weight=1.0, temperature=2.0), CPU, tmp_path)  # fmt: skip
    assert {"action_acc", "privacy_acc", "teacher_action_acc", "loss", "data_wait_frac"} <= set(m)
    assert (tmp_path / "teacher.pt").exists() and (tmp_path / "distill.pt").exists()
    assert not any(p.requires_grad for p in teacher.parameters())  # frozen while distilling


def test_attention_transfer_with_pre_stage(data: StudyData, tmp_path: Path) -> None:
    def stat():
        return create_action_model("baby_stat", num_classes=2, num_segments=2, frames_per_segment=4)

    att = AttentionConfig(pretrain_epochs=1, rolling_every=1)
    m = train_attention(data, create_encoder("elr", resolution=(4, 4)), stat(), stat(),
                        _privacy, CFG, att, CPU, tmp_path)  # fmt: skip
    assert {"action_acc", "privacy_acc", "teacher_action_acc", "loss"} <= set(m)
    assert (tmp_path / "attention_pretrain.pt").exists()


def test_the_encoder_is_held_through_its_warm_up(data: StudyData, tmp_path: Path) -> None:
    """With ``encoder_warmup_epochs`` 1 the encoder's parameters stay as they were through the
    first epoch and move in the second; the action model trains throughout."""
    torch.manual_seed(0)
    encoder, action = create_encoder("bdq"), create_action_model("baby3d", num_classes=2)
    start = [p.detach().clone() for p in encoder.parameters()]
    first_action = [p.detach().clone() for p in action.parameters()]
    after: list[list[torch.Tensor]] = []

    def report(epoch: int, metrics: dict) -> None:
        after.append([p.detach().clone() for p in encoder.parameters()])

    train_adversarial(data, encoder, action, _privacy, CFG,
                      AdversarialConfig(alpha=1.0, encoder_warmup_epochs=1), CPU, tmp_path,
                      report)  # fmt: skip
    held, trained = after
    assert all(torch.equal(a, b) for a, b in zip(start, held, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(held, trained, strict=True))
    assert any(not torch.equal(a, b.detach())
               for a, b in zip(first_action, action.parameters(), strict=True))  # fmt: skip
    assert all(p.requires_grad for p in encoder.parameters())  # handed back trainable


@pytest.mark.parametrize("steps", [1, 3])
def test_the_adversary_takes_privacy_steps_per_encoder_step(steps: int) -> None:
    """One batch: the encoder and action model step once (Eq. 1), the privacy model ``steps``
    times (Eq. 2), as Adam's step counts say."""
    from privar.train.steps import adversarial_step

    torch.manual_seed(0)
    encoder, action, privacy = (create_encoder("bdq"), create_action_model("baby3d", 2),
                                _privacy())  # fmt: skip
    opt_et = torch.optim.Adam([*encoder.parameters(), *action.parameters()])
    opt_p = torch.optim.Adam(privacy.parameters())
    x, labels = torch.rand(2, 3, 4, 32, 32), torch.tensor([0, 1])
    adversarial_step(encoder, action, privacy, opt_et, opt_p, x, labels, labels, 1.0, CPU,
                     privacy_steps=steps)  # fmt: skip
    assert {int(s["step"]) for s in opt_et.state.values()} == {1}
    assert {int(s["step"]) for s in opt_p.state.values()} == {steps}
