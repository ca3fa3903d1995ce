"""Exporting encoders to TorchScript: every registered encoder round-trips through a file, and
an export that does not reproduce the eager module is an error naming the encoder."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from privar.encoders import create_encoder, list_encoders
from privar.export import ExportError, export_encoder

SHAPE = (1, 3, 8, 32, 32)


def _clip(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _load(path: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
        return torch.jit.load(path)


CASES = [(name, {}) for name in list_encoders()] + [
    ("bdq", {"preset": "reference"}),
    ("elr", {"resolution": (6, 8), "blur_sigma": 1.0, "noise_std": 0.05}),  # draws noise
]


@pytest.mark.parametrize(("name", "params"), CASES, ids=lambda v: str(v) if v else "default")
def test_every_encoder_exports_and_reloads(name: str, params: dict, tmp_path: Path) -> None:
    enc = create_encoder(name, **params)
    assert enc.training
    example = _clip(*SHAPE)
    other = _clip(*SHAPE, seed=1)  # same shape, other values: catches branches baked in a trace

    info = export_encoder(enc, example, tmp_path / f"{name}.pt", name=name, check_inputs=[other])

    assert info["method"] in ("script", "trace")
    assert info["method"] == "script" or info["script_error"]  # why it had to trace
    assert info["param_count"] == enc.param_count()
    assert 0.0 <= info["max_abs_diff"] <= 1e-5
    assert info["input_shape"] == list(SHAPE)
    assert Path(info["path"]).is_file()
    assert enc.training  # the mode is restored

    # The caller's encoder is not frozen by the export; the exported one is.
    trainable = [p for p in enc.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == enc.param_count()
    loaded = _load(info["path"])
    assert not any(p.requires_grad for p in loaded.parameters())

    # Independently: the file alone reproduces the eager encoder (same RNG draws for the noisy
    # one), called as a user would, with grad enabled.
    with torch.no_grad():
        torch.manual_seed(7)
        want = enc.eval()(other)
    torch.manual_seed(7)
    got = loaded(other)
    assert got.shape == want.shape == (1, 3, enc.out_frames(SHAPE[2]), 32, 32)
    assert torch.allclose(got, want, rtol=0, atol=1e-5)


def test_export_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    enc = create_encoder("elr", noise_std=0.1)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    export_encoder(enc, _clip(*SHAPE), tmp_path / "elr.pt")
    assert torch.equal(torch.rand(3), expected)


class FrameDiff(nn.Module):
    """Scriptable: x[:, :, 1:] - x[:, :, :-1], one frame at a time (a loop over T)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = [x[:, :, t] - x[:, :, t - 1] for t in range(1, x.shape[2])]
        return torch.stack(frames, dim=2)


class UnscriptableFrameDiff(FrameDiff):
    """The same with an input check TorchScript rejects (``tuple`` of a shape, as in
    ``Encoder.check_input``): it must be traced, and the trace unrolls the loop for the example's
    T, as the ``events`` encoder's is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"expected (B, C, T, H, W), got {tuple(x.shape)}")
        return super().forward(x)


def test_scriptable_modules_are_scripted_and_keep_their_loops(tmp_path: Path) -> None:
    longer = _clip(1, 3, 12, 32, 32)
    info = export_encoder(FrameDiff(), _clip(*SHAPE), tmp_path / "d.pt", check_inputs=[longer])
    assert info["method"] == "script" and info["script_error"] is None
    assert info["max_abs_diff"] == 0.0
    assert info["param_count"] == 0  # a plain nn.Module: counted from its parameters


def test_a_trace_that_does_not_generalise_is_an_error(tmp_path: Path) -> None:
    enc = UnscriptableFrameDiff()
    # On the example's shape the trace is right.
    info = export_encoder(enc, _clip(*SHAPE), tmp_path / "ok.pt")
    assert info["method"] == "trace" and info["max_abs_diff"] == 0.0
    # Another T: 7 frames out, not 11, and the error names the encoder.
    with pytest.raises(ExportError, match=r"encoder 'framediff'.*shape \(1, 3, 7, 32, 32\)"):
        export_encoder(
            enc,
            _clip(*SHAPE),
            tmp_path / "bad.pt",
            name="framediff",
            check_inputs=[_clip(1, 3, 12, 32, 32)],
        )


class PythonNoise(nn.Module):
    """Adds a Python-random offset: tracing freezes the value drawn at trace time."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * x + random.random()


def test_an_export_that_differs_from_eager_is_an_error_naming_the_encoder(
    tmp_path: Path,
) -> None:
    random.seed(0)
    enc = PythonNoise()
    with pytest.raises(ExportError, match=r"encoder 'PythonNoise'.*differs from eager by"):
        export_encoder(enc, _clip(*SHAPE), tmp_path / "noise.pt")
    assert enc.training  # restored on failure too


def test_bad_examples_are_rejected(tmp_path: Path) -> None:
    enc = create_encoder("identity")
    with pytest.raises(ValueError, match=r"example must be a float \(B, C, T, H, W\)"):
        export_encoder(enc, torch.rand(3, 8, 32, 32), tmp_path / "a.pt")
    with pytest.raises(ValueError, match=r"example must hold values in \[0, 1\]"):
        export_encoder(enc, 2 * torch.ones(*SHAPE), tmp_path / "a.pt")
    with pytest.raises(ValueError, match=r"check_inputs\[0\] must be a float"):
        export_encoder(
            enc, _clip(*SHAPE), tmp_path / "a.pt", check_inputs=[torch.ones(*SHAPE).int()]
        )
