"""``train.compile``: the encoder and models compile without graph breaks, and a compiled step
trains to the loss eager training reaches. The step is compiled with TorchDynamo and AOTAutograd
(``backend="aot_eager"``): the graphs, the functionalised backward and the optimiser updates
``maybe_compile`` produces, run by eager kernels. Inductor's generated kernels are PyTorch's to
test; on 2 cores they take minutes to build."""

from __future__ import annotations

import time

import pytest
import torch
import torch._dynamo as dynamo
import torch.nn as nn

from privar.encoders import create_encoder
from privar.errors import UserError
from privar.models import create_action_model, create_privacy_model
from privar.study import Study, with_overrides
from privar.train.steps import adversarial_step, maybe_compile

CPU = torch.device("cpu")


def _players(seed: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    torch.manual_seed(seed)
    return (create_encoder("bdq", levels=4), create_action_model("baby3d", num_classes=3),
            create_privacy_model("baby2d", num_classes=2))  # fmt: skip


@pytest.mark.parametrize("which", ["bdq", "bdq_reference", "baby3d", "baby2d"])
def test_no_graph_breaks(which: str) -> None:
    encoder, action, privacy = _players(0)
    model, x = {
        "bdq": (encoder, torch.rand(2, 3, 5, 16, 16)),
        "bdq_reference": (create_encoder("bdq", preset="reference"), torch.rand(2, 3, 5, 16, 16)),
        "baby3d": (action, torch.rand(2, 3, 4, 16, 16)),
        "baby2d": (privacy, torch.rand(8, 3, 16, 16)),
    }[which]
    dynamo.reset()
    explained = dynamo.explain(model)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_the_setting_is_auto_true_or_false() -> None:
    for value in ("auto", True, False):
        assert with_overrides(Study(name="s"), {"train.compile": value}).train.compile == value
    with pytest.raises(UserError) as bad:
        with_overrides(Study(name="s"), {"train.compile": "fast"})
    assert str(bad.value) == "--set: train.compile: must be auto, true or false, got 'fast'"


def test_setting_decides() -> None:
    m = nn.Linear(2, 2)
    assert maybe_compile(m, CPU, "auto") is m and maybe_compile(m, CPU, False) is m
    assert maybe_compile(m, torch.device("cuda"), False) is m
    compiled = maybe_compile(m, CPU, True)
    assert compiled is not m and compiled.state_dict().keys() != m.state_dict().keys()
    assert list(compiled.parameters()) == list(m.parameters())  # the same tensors


def _train(compiled: bool, x: torch.Tensor, action: torch.Tensor,
           privacy: torch.Tensor) -> list[float]:  # fmt: skip
    """Four of the loops' BDQ steps (both updates); returns each step's losses."""
    encoder, action_model, privacy_model = _players(1)
    opt_et = torch.optim.SGD([*encoder.parameters(), *action_model.parameters()], lr=0.05)
    opt_p = torch.optim.SGD(privacy_model.parameters(), lr=0.05)
    e, a, p = ((torch.compile(m, backend="aot_eager") if compiled else m)
               for m in (encoder, action_model, privacy_model))  # fmt: skip
    return [adversarial_step(e, a, p, opt_et, opt_p, x, action, privacy, 1.0, CPU)
            for _ in range(4)]  # fmt: skip


def test_compiled_training_matches_eager() -> None:
    torch.manual_seed(2)
    x, action, privacy = torch.rand(4, 3, 5, 16, 16), torch.randint(0, 3, (4,)), torch.arange(4) % 2
    eager = _train(False, x, action, privacy)
    dynamo.reset()
    start = time.perf_counter()
    compiled = _train(True, x, action, privacy)
    assert dynamo.utils.counters["stats"]["unique_graphs"] >= 3, "nothing was compiled"
    assert compiled == pytest.approx(eager, rel=1e-3, abs=1e-4)
    assert eager[-1] < eager[0]  # it does train
    print(f"compiled and ran 4 steps in {time.perf_counter() - start:.1f} s")
