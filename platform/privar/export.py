"""Export an encoder for the camera: TorchScript, saved, reloaded and checked against eager.

The encoder is what runs at the camera (BDQ ``papers/001`` Sec. 3.1, ELR ``papers/000`` Sec. 3),
so the exported file must compute what the study measured. :func:`export_encoder` therefore never
trusts the export: it reloads the file from disk and compares its output with the eager module's.

Scripting keeps Python control flow (loops over frames, branches on values); tracing records the
operations one example ran, so a traced module is specialised to that example's shapes and
branches (e.g. the ``events`` encoder's loop over frames is unrolled for the example's T). Hence
script first, trace as the fall-back, and the method is reported. Pass ``check_inputs`` with the
other inputs the camera will feed (another T, H x W or batch size) to have them checked too.

torch 2.14 deprecates TorchScript (``torch.jit.script``/``trace``/``save``/``load`` emit a
``FutureWarning`` pointing at ``torch.export``) but it still works; the warnings raised during an
export are captured and returned, so a caller can log them instead of printing them.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: The largest |eager - exported| accepted, in the encoder's output units (intensity in [0, 1]).
ATOL = 1e-5


class ExportError(RuntimeError):
    """The exported encoder does not reproduce the eager one; the message names the encoder."""


def _check_clip(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 5 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must be a float (B, C, T, H, W) tensor, got {got}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{what} must hold values in [0, 1], got [{x.min():.3g}, {x.max():.3g}]")


def _cuda_devices(x: torch.Tensor) -> list[torch.device]:
    """The devices whose RNG :func:`torch.random.fork_rng` must save for ``x`` (none on CPU)."""
    return [x.device] if x.device.type == "cuda" else []


def _seeded(module: nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``module(x)`` without grad, from a fixed RNG state, leaving the global RNG untouched.

    Encoders may draw noise (ELR's read noise, ``torch.randn_like``): eager and exported runs
    must draw the same numbers to be comparable.
    """
    with torch.random.fork_rng(devices=_cuda_devices(x)), torch.no_grad():
        torch.manual_seed(seed)
        return module(x)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _to_torchscript(
    encoder: nn.Module, example: torch.Tensor
) -> tuple[torch.jit.ScriptModule, str, str | None]:
    """``(module, "script" | "trace", why scripting failed or None)``."""
    try:
        return torch.jit.script(encoder), "script", None
    except Exception as exc:  # any scripting failure means: trace instead
        script_error = _first_line(exc)
    # check_trace would re-run and compare the trace itself, which fails spuriously for noisy
    # encoders; the reload check below is stricter (it goes through the saved file). The RNG
    # is forked so that tracing does not advance the caller's random stream.
    with torch.random.fork_rng(devices=_cuda_devices(example)), torch.no_grad():
        traced = torch.jit.trace(encoder, (example,), check_trace=False)
    return traced, "trace", script_error


def export_encoder(
    encoder: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    name: str | None = None,
    check_inputs: Sequence[torch.Tensor] = (),
    atol: float = ATOL,
) -> dict[str, Any]:
    """Save ``encoder`` as TorchScript at ``path``, reload it and check it against eager.

    What is exported is a frozen copy: eval mode, no parameter requiring grad (the camera only
    runs inference). Freezing matters beyond intent: BDQ projects its thresholds in place in
    ``forward`` under ``no_grad``; a trace records the in-place copy but not the ``no_grad``, so
    with trainable parameters the exported module fails in any call made with grad enabled. The
    caller's ``encoder`` keeps its parameters and mode. The export is specialised to
    ``example``'s device and dtype (a trace records the device of tensors it creates).

    Args:
        encoder: an ``nn.Module`` mapping ``(B, C, T, H, W)`` clips to clips (every registered
            :class:`~privar.encoders.Encoder`).
        example: ``(B, C, T, H, W)`` float in [0, 1]; traced on if scripting fails, and checked.
        path: the ``.pt`` file to write; parent folders are created.
        name: the encoder's name in messages (its registry name); the class name by default.
        check_inputs: more clips to check the reloaded module on, e.g. other T or H x W.
        atol: the largest accepted max |eager - reloaded| over all checked clips.

    Returns:
        ``{"path": str, "method": "script" | "trace", "param_count": int,
        "max_abs_diff": float, "script_error": str | None, "warnings": list[str],
        "input_shape": list[int]}``. ``script_error`` says why scripting failed when tracing
        was used; ``warnings`` are the distinct warning messages raised while exporting.

    Raises:
        ValueError: ``example`` or a check input is not a float clip in [0, 1].
        ExportError: the reloaded module's output differs (shape, or values beyond ``atol``)
            on some checked clip; the message names the encoder.
    """
    name = name or type(encoder).__name__
    clips = [example, *check_inputs]
    for i, x in enumerate(clips):
        _check_clip(x, "example" if i == 0 else f"check_inputs[{i - 1}]")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    # A copy, since a trace shares its parameters with the module traced.
    frozen = copy.deepcopy(encoder).eval().requires_grad_(False)
    was_training = encoder.training
    encoder.eval()  # the reference output, in the mode that was exported
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module, method, script_error = _to_torchscript(frozen, example)
            torch.jit.save(module, str(path))
            # From disk, not the in-memory module: the file is what goes to the camera.
            reloaded = torch.jit.load(str(path), map_location=example.device)
            max_diff = 0.0
            for i, x in enumerate(clips):
                want, got = _seeded(encoder, x), _seeded(reloaded, x)
                if got.shape != want.shape:
                    raise ExportError(
                        f"encoder {name!r}: exported ({method}) output shape {tuple(got.shape)} "
                        f"!= eager {tuple(want.shape)} for input {i} of shape {tuple(x.shape)}"
                    )
                diff = (got.double() - want.double()).abs().max().item() if want.numel() else 0.0
                # `not <=` also catches NaN.
                if not diff <= atol:
                    raise ExportError(
                        f"encoder {name!r}: exported ({method}) output differs from eager by "
                        f"{diff:.3g} > {atol:g} for input {i} of shape {tuple(x.shape)}"
                    )
                max_diff = max(max_diff, diff)
    finally:
        encoder.train(was_training)

    param_count = getattr(encoder, "param_count", None)
    return {
        "path": str(path),
        "method": method,
        "param_count": int(
            param_count()
            if callable(param_count)
            else sum(p.numel() for p in encoder.parameters() if p.requires_grad)
        ),
        "max_abs_diff": max_diff,
        "script_error": script_error,
        "warnings": list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)),
        "input_shape": list(example.shape),
    }
