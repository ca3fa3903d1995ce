"""Training objectives pinned on hand-computed values (BDQ Eq. 1-2, ELR Eq. 2, STAT Eq. 1-4 and
the rolling weights of STAT Sec. 3.3.2).

Logits are chosen so the softmax is simple: [0, 0] -> [1/2, 1/2]; [ln 3, 0] -> [3/4, 1/4]
(e^{ln 3} = 3, 3 / (3 + 1) = 3/4).
"""

from __future__ import annotations

import math

import pytest
import torch

from privar.objectives import (
    adversarial_loss,
    distill_total,
    entropy,
    kd_loss,
    max_entropy,
    privacy_loss,
    rolling_weights,
    sat_loss,
    spatial_attention_map,
    stat_total,
    tat_loss,
)

LN2, LN3 = math.log(2.0), math.log(3.0)
# H([3/4, 1/4]) = -(3/4 ln(3/4) + 1/4 ln(1/4)) = -(3/4 ln 3 - 3/4 ln 4 - 1/4 ln 4) = ln 4 - 3/4 ln 3
H_3_1 = 2 * LN2 - 0.75 * LN3  # ~0.5623


def t(rows: list) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def close(x: torch.Tensor, expected: float, tol: float = 1e-6) -> bool:
    return abs(float(x) - expected) <= tol


# ---------------------------------------------------------------- BDQ: entropy and adversary


def test_entropy_hand_values() -> None:
    assert close(entropy(t([[0.0, 0.0]])), LN2)  # uniform over 2: ln 2
    assert close(entropy(t([[LN3, 0.0]])), H_3_1)
    assert close(entropy(t([[0.0, 0.0, 0.0]])), LN3)  # uniform over 3: ln 3
    # batch mean: (ln 2 + H_3_1) / 2
    assert close(entropy(t([[0.0, 0.0], [LN3, 0.0]])), (LN2 + H_3_1) / 2)
    # shifting all logits of a row changes nothing
    assert close(entropy(t([[LN3 + 7.0, 7.0]])), H_3_1)


def test_entropy_is_stable_and_float32() -> None:
    h = entropy(t([[1000.0, 0.0], [-1000.0, 1000.0]]))  # one-hot rows: entropy 0, no nan
    assert torch.isfinite(h) and close(h, 0.0)
    half = entropy(torch.zeros(3, 5, dtype=torch.float16))
    assert half.dtype == torch.float32 and close(half, math.log(5))
    assert entropy(torch.zeros(2, 2, dtype=torch.float64)).dtype == torch.float64


def test_max_entropy() -> None:
    assert max_entropy(2) == pytest.approx(LN2)
    assert max_entropy(13) == pytest.approx(math.log(13))  # SBU's 13 actor pairs
    assert max_entropy(1) == 0.0
    assert close(entropy(torch.zeros(4, 13)), max_entropy(13))
    with pytest.raises(ValueError, match="num_classes"):
        max_entropy(0)


def test_adversarial_loss_hand_value() -> None:
    # CE: action logits [ln 3, 0], label 0 -> -ln(3/4) = ln 4 - ln 3 = ln(4/3)
    # entropy: privacy logits [0, 0] -> ln 2;  alpha = 2
    # L = ln(4/3) - 2 ln 2 = ln(4/3) - ln 4 = ln(1/3) = -ln 3
    loss = adversarial_loss(t([[LN3, 0.0]]), torch.tensor([0]), t([[0.0, 0.0]]), alpha=2.0)
    assert close(loss, -LN3)
    # alpha = 0 leaves the cross-entropy alone
    ce = adversarial_loss(t([[LN3, 0.0]]), torch.tensor([0]), t([[0.0, 0.0]]), alpha=0.0)
    assert close(ce, math.log(4 / 3))


def test_adversarial_loss_per_frame_privacy() -> None:
    # B = 1 clip, T = 4 frames, per-frame privacy logits (B*T, P) = (4, 2):
    # frame entropies ln 2, ln 2, H_3_1, H_3_1 -> mean over all frames (ln 2 + H_3_1) / 2
    frames = t([[0.0, 0.0], [0.0, 0.0], [LN3, 0.0], [LN3, 0.0]])
    action, label = t([[0.0, 0.0]]), torch.tensor([1])  # CE = -ln(1/2) = ln 2
    expected = LN2 - 1.0 * (LN2 + H_3_1) / 2
    assert close(adversarial_loss(action, label, frames, alpha=1.0), expected)
    # the same frames as (B, T, P) = (1, 4, 2)
    assert close(adversarial_loss(action, label, frames.reshape(1, 4, 2), alpha=1.0), expected)


def test_increasing_alpha_lowers_loss_when_entropy_positive() -> None:
    action, label, privacy = t([[LN3, 0.0]]), torch.tensor([0]), t([[LN3, 0.0]])
    losses = [float(adversarial_loss(action, label, privacy, a)) for a in (0.0, 1.0, 2.0, 8.0)]
    assert losses == sorted(losses, reverse=True) and len(set(losses)) == 4
    # dL/dalpha = -H: each unit of alpha lowers the loss by H_3_1
    assert losses[0] - losses[1] == pytest.approx(H_3_1, abs=1e-6)


def test_adversarial_gradient_pushes_privacy_towards_uniform() -> None:
    # H(z) for z = [ln 3, 0], p = [3/4, 1/4]: dH/dz_i = -p_i (ln p_i + H)
    #   dH/dz_0 = -3/4 (ln 3 - ln 4 + ln 4 - 3/4 ln 3) = -3/4 * 1/4 ln 3 = -3/16 ln 3
    #   dH/dz_1 = -1/4 (-ln 4 + ln 4 - 3/4 ln 3)       = +3/16 ln 3
    # L = CE - alpha H  ->  dL/dz = alpha * [3/16 ln 3, -3/16 ln 3]
    alpha = 2.0
    z = t([[LN3, 0.0]]).requires_grad_(True)
    adversarial_loss(t([[0.0, 0.0]]), torch.tensor([0]), z, alpha).backward()
    g = alpha * 3 / 16 * LN3
    torch.testing.assert_close(z.grad, t([[g, -g]]))
    # a descent step lowers the favoured logit, raises the other: the entropy goes up
    stepped = (z - 0.5 * z.grad).detach()
    assert float(entropy(stepped)) > H_3_1
    assert float(stepped[0, 0] - stepped[0, 1]) < LN3
    # already uniform: no push
    u = t([[0.0, 0.0]]).requires_grad_(True)
    adversarial_loss(t([[0.0, 0.0]]), torch.tensor([0]), u, alpha).backward()
    torch.testing.assert_close(u.grad, torch.zeros(1, 2))


def test_privacy_loss_hand_values() -> None:
    # rows: [ln 3, 0] label 0 -> ln(4/3); [0, 0] label 1 -> ln 2; mean = (ln(4/3) + ln 2) / 2
    loss = privacy_loss(t([[LN3, 0.0], [0.0, 0.0]]), torch.tensor([0, 1]))
    assert close(loss, (math.log(4 / 3) + LN2) / 2)
    # per frame (B, T, P) = (1, 2, 2) with clip label 0 for both frames:
    # [ln 3, 0] -> -ln(3/4) = ln(4/3);  [0, ln 3] -> -ln(1/4) = ln 4
    loss = privacy_loss(t([[[LN3, 0.0], [0.0, LN3]]]), torch.tensor([0]))
    assert close(loss, (math.log(4 / 3) + math.log(4)) / 2)


def test_adversarial_invalid_inputs() -> None:
    a, y, p = t([[0.0, 0.0]]), torch.tensor([0]), t([[0.0, 0.0]])
    with pytest.raises(ValueError, match="alpha"):
        adversarial_loss(a, y, p, alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        adversarial_loss(a, y, p, alpha=float("nan"))
    with pytest.raises(ValueError, match="labels must have shape"):
        adversarial_loss(a, torch.tensor([0, 1]), p, alpha=1.0)
    with pytest.raises(ValueError, match="integer class indices"):
        privacy_loss(p, torch.tensor([0.0]))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\)"):
        privacy_loss(torch.zeros(2, 3, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="expected logits of shape"):
        entropy(torch.zeros(3))
    with pytest.raises(ValueError, match="floating-point"):
        entropy(torch.zeros(2, 2, dtype=torch.long))


# ---------------------------------------------------------------- ELR: distillation


def test_kd_zero_when_student_equals_teacher() -> None:
    z = t([[LN3, 0.0], [1.0, -2.0]])
    for direction in ("teacher_student", "student_teacher"):
        assert close(kd_loss(z, z.clone(), 1.0, direction, False), 0.0)
        assert close(kd_loss(z, z + 5.0, 4.0, direction, True), 0.0)  # a shift is no change


def test_kd_directions_hand_values() -> None:
    # teacher [ln 3, 0] -> p_t = [3/4, 1/4]; student [0, 0] -> p_s = [1/2, 1/2]
    # KL(p_t || p_s) = 3/4 ln(3/4 / 1/2) + 1/4 ln(1/4 / 1/2) = 3/4 ln(3/2) - 1/4 ln 2
    #               = 3/4 ln 3 - ln 2                             ~ 0.1308
    # KL(p_s || p_t) = 1/2 ln(1/2 / 3/4) + 1/2 ln(1/2 / 1/4) = 1/2 ln(2/3) + 1/2 ln 2
    #               = 1/2 ln(4/3)                                 ~ 0.1438
    student, teacher = t([[0.0, 0.0]]), t([[LN3, 0.0]])
    ts = kd_loss(student, teacher, 1.0, "teacher_student", False)
    st = kd_loss(student, teacher, 1.0, "student_teacher", False)
    assert close(ts, 0.75 * LN3 - LN2)
    assert close(st, 0.5 * math.log(4 / 3))
    assert float(ts) > 0 and float(st) > 0 and abs(float(ts) - float(st)) > 0.01
    # the authors' code: KLDivLoss(batchmean)(log_softmax(hr), softmax(lr)) is student_teacher
    code = torch.nn.KLDivLoss(reduction="batchmean")(
        torch.log_softmax(teacher, 1), torch.softmax(student, 1)
    )
    torch.testing.assert_close(st, code)


def test_kd_temperature_and_t2_scaling() -> None:
    # teacher [2 ln 3, 0] at T = 2 -> [ln 3, 0] -> p_t = [3/4, 1/4]; student [0, 0] -> [1/2, 1/2]
    student, teacher = t([[0.0, 0.0]]), t([[2 * LN3, 0.0]])
    kl = 0.75 * LN3 - LN2
    assert close(kd_loss(student, teacher, 2.0, "teacher_student", False), kl)
    assert close(kd_loss(student, teacher, 2.0, "teacher_student", True), 4 * kl)  # T^2 = 4
    # batchmean: a batch of two identical pairs has the same value
    assert close(kd_loss(student.repeat(2, 1), teacher.repeat(2, 1), 2.0), kl)


def test_kd_gradients_and_teacher_detached() -> None:
    # d KL(p_t || p_s) / d z_s = (p_s - p_t) / T = [1/2 - 3/4, 1/2 - 1/4] = [-1/4, 1/4] at T = 1
    student = t([[0.0, 0.0]]).requires_grad_(True)
    teacher = t([[LN3, 0.0]]).requires_grad_(True)
    kd_loss(student, teacher, 1.0, "teacher_student", False).backward()
    torch.testing.assert_close(student.grad, t([[-0.25, 0.25]]))
    assert teacher.grad is None
    # T = 2 with T^2 scaling: T^2 * (p_s - p_t) / T = 2 * [-1/4, 1/4]
    student.grad = None
    kd_loss(student, t([[2 * LN3, 0.0]]), 2.0, "teacher_student", True).backward()
    torch.testing.assert_close(student.grad, t([[-0.5, 0.5]]))


def test_distill_total_and_invalid_inputs() -> None:
    # ELR code: 1 * CE + 1.25 * KL = 1 + 1.25 * 0.5 = 1.625
    assert close(distill_total(torch.tensor(1.0), torch.tensor(0.5), 1.25), 1.625)
    z = t([[0.0, 0.0]])
    with pytest.raises(ValueError, match="direction"):
        kd_loss(z, z, 1.0, "hinton", False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(z, z, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(z, t([[0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="weight"):
        distill_total(torch.tensor(1.0), torch.tensor(0.5), -1.0)


# ---------------------------------------------------------------- STAT: attention transfer


def test_spatial_attention_map_hand_values() -> None:
    # A: (N=1, C=2, H=1, W=2), channel 0 = [[1, 0]], channel 1 = [[-1, 2]]
    a = t([[[[1.0, 0.0]], [[-1.0, 2.0]]]])
    # p = 1 (STAT Eq. 1): F = [|1| + |-1|, |0| + |2|] = [2, 2] -> / sqrt(8) = [1/sqrt2, 1/sqrt2]
    torch.testing.assert_close(spatial_attention_map(a), t([[1 / math.sqrt(2)] * 2]))
    # p = 2 (Zagoruyko): F = [1 + 1, 0 + 4] = [2, 4] -> / sqrt(20) = [1/sqrt5, 2/sqrt5]
    s5 = math.sqrt(5)
    torch.testing.assert_close(spatial_attention_map(a, p=2), t([[1 / s5, 2 / s5]]))
    # 5D (N, C, T, H, W) = (1, 1, 2, 1, 2): one map over T*H*W = 4 positions
    # F = [3, 0, 0, 4] -> / 5
    v = t([3.0, 0.0, 0.0, -4.0]).reshape(1, 1, 2, 1, 2)
    torch.testing.assert_close(spatial_attention_map(v), t([[0.6, 0.0, 0.0, 0.8]]))
    assert spatial_attention_map(torch.randn(3, 8, 6, 5, 7)).shape == (3, 6 * 5 * 7)


def test_sat_zero_for_identical_and_scale_invariant() -> None:
    g = torch.Generator().manual_seed(0)
    blocks = [torch.randn(2, 4, 6, 8, generator=g), torch.randn(2, 8, 3, 4, generator=g)]
    assert close(sat_loss(blocks, [b.clone() for b in blocks], [0.5, 0.5]), 0.0)
    # L2 normalisation: any positive scale of the activation gives the same map
    scaled = [3.7 * b for b in blocks]
    assert close(sat_loss(scaled, blocks, [0.5, 0.5]), 0.0, tol=1e-5)
    torch.testing.assert_close(spatial_attention_map(scaled[0]), spatial_attention_map(blocks[0]))
    # |A|: a negative scale too
    torch.testing.assert_close(
        spatial_attention_map(-2 * blocks[0]), spatial_attention_map(blocks[0])
    )
    # and a different activation is positive
    assert float(sat_loss(blocks, [b.flip(-1) for b in blocks], [0.5, 0.5])) > 0


def test_sat_hand_values() -> None:
    student = t([[[[1.0, 0.0]]]])  # (1, 1, 1, 2): unit map [1, 0]
    teacher = t([[[[0.0, 5.0]]]])  # unit map [0, 1]
    # difference [1, -1]: 2-norm sqrt 2, 1-norm 2
    assert close(sat_loss([student], [teacher], [1.0]), math.sqrt(2))
    assert close(sat_loss([student], [teacher], [1.0], p=1), 2.0)
    # weights [0.25, 0.75], second block identical (0): 0.25 * sqrt 2
    assert close(
        sat_loss([student, student], [teacher, student], [0.25, 0.75]), 0.25 * math.sqrt(2)
    )
    # batch mean: sample 0 differs (sqrt 2), sample 1 identical (0) -> sqrt(2) / 2
    s2, t2 = torch.cat([student, student]), torch.cat([teacher, student])
    assert close(sat_loss([s2], [t2], [1.0]), math.sqrt(2) / 2)


def test_sat_resizes_teacher_map_to_student_size() -> None:
    # teacher raw map 1x4 = [1, 1, 0, 0] shrunk to the student's 1x2 with anti-aliased bilinear:
    # scale 2, output pixel j centred at 2j + 1, triangle weights 1 - |d| / 2 on input centres
    # i + 0.5:  j = 0: d = .5, .5, 1.5 -> .75, .75, .25 -> (.75 + .75) / 1.75 = 6/7
    #           j = 1: d = 1.5, .5, .5 -> .25, .75, .75 -> .25 / 1.75          = 1/7
    teacher = t([[[[1.0, 1.0, 0.0, 0.0]]]])
    n = math.hypot(6, 1)
    torch.testing.assert_close(spatial_attention_map(teacher, size=(1, 2)), t([[6 / n, 1 / n]]))
    # student map [1, 0]: difference [1 - 6/n, -1/n]
    expected = math.hypot(1 - 6 / n, 1 / n)
    assert close(sat_loss([t([[[[1.0, 0.0]]]])], [teacher], [1.0]), expected)
    # a flat teacher stays flat at any size: 12x16 teacher vs 3x4 student, both constant
    assert close(sat_loss([torch.ones(2, 3, 3, 4)], [torch.ones(2, 5, 12, 16)], [1.0]), 0.0)


def test_sat_shapes_across_sizes_2d_and_3d() -> None:
    g = torch.Generator().manual_seed(1)
    # ResNet-like: student sees 12x16, teacher a larger frame; channels may differ too
    student = [torch.randn(4, 64, 3, 4, generator=g), torch.randn(4, 128, 2, 2, generator=g)]
    teacher = [torch.randn(4, 32, 56, 75, generator=g), torch.randn(4, 128, 28, 38, generator=g)]
    loss = sat_loss(student, teacher, [0.5, 0.5])
    manual = sum(
        0.5
        * torch.linalg.vector_norm(
            spatial_attention_map(s) - spatial_attention_map(te, size=tuple(s.shape[-2:])), dim=1
        ).mean()
        for s, te in zip(student, teacher, strict=True)
    )
    torch.testing.assert_close(loss, manual)
    assert loss.shape == () and 0 < float(loss) <= 2.0  # unit vectors: each distance <= 2
    # 3D backbone: (N, C, T, H, W), same T, different H, W
    s3, t3 = torch.randn(2, 8, 4, 3, 4, generator=g), torch.randn(2, 8, 4, 12, 16, generator=g)
    assert torch.isfinite(sat_loss([s3], [t3], [1.0]))
    with pytest.raises(ValueError, match="frames T"):
        sat_loss([s3], [torch.randn(2, 8, 2, 12, 16)], [1.0])


def test_sat_gradients_finite_and_teacher_detached() -> None:
    a = torch.randn(2, 3, 4, 4)
    student = a.clone().requires_grad_(True)
    teacher = a.clone().requires_grad_(True)
    sat_loss([student], [teacher], [1.0]).backward()  # identical maps: norm of zero
    assert torch.isfinite(student.grad).all() and teacher.grad is None
    teacher2 = torch.randn(2, 3, 8, 8, requires_grad=True)
    sat_loss([student], [teacher2], [1.0], detach_teacher=False).backward()
    assert teacher2.grad is not None and torch.isfinite(teacher2.grad).all()


def test_sat_invalid_inputs() -> None:
    x = torch.ones(1, 1, 2, 2)
    with pytest.raises(ValueError, match="number of student and teacher blocks"):
        sat_loss([x, x], [x], [1.0, 1.0])
    with pytest.raises(ValueError, match="expected 2 weights"):
        sat_loss([x, x], [x, x], [1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        sat_loss([x], [x], [-1.0])
    with pytest.raises(ValueError, match="batch size"):
        sat_loss([x], [torch.ones(2, 1, 2, 2)], [1.0])
    with pytest.raises(ValueError, match="norm type"):
        sat_loss([x], [x], [1.0], p=0.5)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        spatial_attention_map(torch.ones(2, 3))
    with pytest.raises(ValueError, match="p must be > 0"):
        spatial_attention_map(x, p=0)


def test_tat_hand_values() -> None:
    # student FC [3, 4] -> [0.6, 0.8]; teacher [4, 3] -> [0.8, 0.6]
    # difference [-0.2, 0.2]: 2-norm 0.2 sqrt 2
    s, te = t([[3.0, 4.0]]), t([[4.0, 3.0]])
    assert close(tat_loss(s, te), 0.2 * math.sqrt(2))
    # positive scale of the teacher: [6, 8] normalises to [0.6, 0.8] -> 0
    assert close(tat_loss(s, t([[6.0, 8.0]])), 0.0)
    # two FC layers (64-d hidden, K-d), weights 2/3 and 1/3; hidden layer identical (0)
    hidden = torch.randn(1, 64)
    loss = tat_loss([hidden, s], [hidden.clone(), te], [2 / 3, 1 / 3])
    assert close(loss, 1 / 3 * 0.2 * math.sqrt(2))
    # default weights: the unweighted sum of Eq. 3
    assert close(tat_loss([s, s], [te, te]), 2 * 0.2 * math.sqrt(2))
    with pytest.raises(ValueError, match="same shape"):
        tat_loss(s, t([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="expected 2 weights"):
        tat_loss([s, s], [te, te], [1.0])


def test_stat_total() -> None:
    # Eq. 4 with Table 1's 1/3 each: (1 + 2 + 3) / 3 = 2
    ce, sat, tat = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)
    assert close(stat_total(ce, sat, tat, 1 / 3, 1 / 3, 1 / 3), 2.0)
    # unsupervised pre-stage: SAT and TAT only -> 0.5 * 2 + 0.5 * 3 = 2.5
    assert close(stat_total(ce, sat, tat, 0.0, 0.5, 0.5), 2.5)
    with pytest.raises(ValueError, match="finite and >= 0"):
        stat_total(ce, sat, tat, 1.0, -0.5, 0.5)


def test_rolling_weights_paper_schedule() -> None:
    # STAT Sec. 3.3.2, every 10 epochs: 40-30-20-10, 30-40-20-10, 20-30-40-10, 10-20-30-40
    base = [0.1, 0.2, 0.3, 0.4]
    assert rolling_weights(base, 0, 10) == [0.4, 0.3, 0.2, 0.1]
    assert rolling_weights(base, 9, 10) == [0.4, 0.3, 0.2, 0.1]
    assert rolling_weights(base, 10, 10) == [0.3, 0.4, 0.2, 0.1]
    assert rolling_weights(base, 25, 10) == [0.2, 0.3, 0.4, 0.1]
    assert rolling_weights(base, 39, 10) == [0.1, 0.2, 0.3, 0.4]
    # temporal part: 66-33, 33-66
    assert rolling_weights([0.66, 0.33], 0, 10) == [0.66, 0.33]
    assert rolling_weights([0.66, 0.33], 10, 10) == [0.33, 0.66]
    assert rolling_weights([0.66, 0.33], 20, 10) == [0.66, 0.33]


def test_rolling_weights_every_two() -> None:
    stages = {
        (0, 1): [4.0, 3.0, 2.0, 1.0],
        (2, 3): [3.0, 4.0, 2.0, 1.0],
        (4, 5): [2.0, 3.0, 4.0, 1.0],
        (6, 7): [1.0, 2.0, 3.0, 4.0],
        (8, 9): [4.0, 3.0, 2.0, 1.0],  # "alternately": starts over
    }
    for epochs, expected in stages.items():
        for epoch in epochs:
            assert rolling_weights([1, 2, 3, 4], epoch, 2) == expected
    # only the values matter, not their order; the sum is kept
    assert rolling_weights([4, 1, 3, 2], 2, 2) == [3.0, 4.0, 2.0, 1.0]
    assert sum(rolling_weights([1, 2, 3, 4], 5, 2)) == 10.0
    # cycle=False stays on the last stage (10-20-30-40)
    assert rolling_weights([1, 2, 3, 4], 100, 2, cycle=False) == [1.0, 2.0, 3.0, 4.0]
    assert rolling_weights([0.25] * 4, 7, 2) == [0.25] * 4


def test_rolling_weights_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="empty"):
        rolling_weights([], 0, 10)
    with pytest.raises(ValueError, match="finite and >= 0"):
        rolling_weights([1.0, -1.0], 0, 10)
    with pytest.raises(ValueError, match="epoch must be an int >= 0"):
        rolling_weights([1.0], -1, 10)
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        rolling_weights([1.0], 0, 0)
    with pytest.raises(ValueError, match="epoch must be an int"):
        rolling_weights([1.0], 1.5, 10)  # type: ignore[arg-type]


# ---------------------------------------------------------------- precision


def test_objectives_under_autocast_return_float32() -> None:
    g = torch.Generator().manual_seed(2)
    z32 = torch.randn(4, 5, generator=g)
    acts = [torch.randn(2, 16, 6, 8, generator=g)]
    t_acts = [torch.randn(2, 16, 12, 16, generator=g)]
    labels = torch.tensor([0, 1, 2, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        zb = z32.bfloat16()
        out = {
            "entropy": entropy(zb),
            "adv": adversarial_loss(zb, labels, zb, 1.0),
            "kd": kd_loss(zb, zb.flip(0), 2.0, "teacher_student", True),
            "sat": sat_loss([a.bfloat16() for a in acts], [a.bfloat16() for a in t_acts], [1.0]),
            "tat": tat_loss(zb, zb.flip(0)),
        }
    ref = {
        "entropy": entropy(z32.bfloat16().float()),
        "adv": adversarial_loss(z32.bfloat16().float(), labels, z32.bfloat16().float(), 1.0),
        "kd": kd_loss(z32.bfloat16().float(), z32.bfloat16().float().flip(0), 2.0, scale_t2=True),
        "sat": sat_loss([acts[0].bfloat16().float()], [t_acts[0].bfloat16().float()], [1.0]),
        "tat": tat_loss(z32.bfloat16().float(), z32.bfloat16().float().flip(0)),
    }
    for name, value in out.items():
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, ref[name], msg=name)
