"""BDQ forward + backward: privar's encoder against the authors' release written out naively.

The naive version is BDQ as the release writes it (github.com/suakaw/BDQ_PrivacyAR,
``degradNet.py``): a kernel from unnormalised Gaussian densities, a (1, 5, 5) depthwise conv3d,
the frame difference, the whole batch's min/max, and the staircase as a Python loop over the
thresholds, one sigmoid each. Both run the ``reference`` preset's settings on the same clips;
their outputs and threshold gradients are checked to agree before anything is timed. With
``--compile``, privar's encoder under ``torch.compile`` too (the loops' ``train.compile``).

Prints a table; ``--out FILE`` writes JSON with ``bdq_vs_naive`` (naive seconds / privar seconds
per forward + backward, eager both) and, compiled, ``bdq_compiled_vs_naive``.

    python benchmarks/encoder.py [--quick] [--compile] [--batch 16] [--frames 16] [--size 224]
        [--device cuda] [--out encoder.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from privar.encoders import create_encoder

LEVELS, HARDNESS, SIGMA, EPS = 16, 5.0, 3.0, 1e-4  # the release's settings


class NaiveBDQ(nn.Module):
    """BDQ as the release writes it: ``(B, C, T, H, W)`` in [0, 1] -> ``(B, C, T-1, H, W)``."""

    def __init__(self) -> None:
        super().__init__()
        self.thresholds = nn.Parameter(torch.arange(LEVELS - 1, dtype=torch.float32) + 0.5)
        r = torch.arange(5, dtype=torch.float32) - 2
        density = torch.exp(-(r**2) / (2 * SIGMA**2)) / (SIGMA * math.sqrt(2 * math.pi))
        kernel = torch.outer(density, density)
        self.register_buffer("kernel", (kernel / kernel.sum()).view(1, 1, 1, 5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        blurred = F.conv3d(x, self.kernel.expand(c, 1, 1, 5, 5), padding=(0, 2, 2), groups=c)
        d = blurred[:, :, 1:] - blurred[:, :, :-1]
        lo, hi = d.min(), d.max()
        scale = torch.clamp((hi - lo) / (LEVELS - 1), min=EPS)
        xq = ((d - lo) / ((hi - lo) + EPS)) * (LEVELS - 1)
        with torch.no_grad():
            self.thresholds.copy_(self.thresholds.clamp(0, LEVELS - 1).sort().values)
        y = torch.zeros_like(xq)
        for n in range(LEVELS - 1):
            y = y + torch.sigmoid(HARDNESS * (xq - self.thresholds[n]))
        return y * scale + lo


def step(encoder: nn.Module, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """One forward + backward; returns the output (B, C, T-1, H, W), detached."""
    encoder.zero_grad(set_to_none=True)
    y = encoder(x)
    (y * w).sum().backward()
    return y.detach()


def seconds(fns: dict[str, Callable[[], object]], device: torch.device,
            repeats: int) -> dict[str, float]:  # fmt: skip
    """Median wall time of each of ``fns`` in seconds, after one warm-up call each. The calls
    take turns, so a machine that gets busier halfway slows every column alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(repeats + 1):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if r:  # the first round warms up
                times[name].append(time.perf_counter() - t)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small clips, few repeats (CPU-sized)")
    ap.add_argument("--compile", action="store_true", help="also time privar's BDQ compiled")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224, help="clip height and width, pixels")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.batch, args.frames, args.size, args.repeats = 2, 8, 112, 5
    device = torch.device(args.device)

    torch.manual_seed(0)
    shape = (args.batch, 3, args.frames, args.size, args.size)
    x = torch.rand(shape, device=device)
    w = torch.randn(args.batch, 3, args.frames - 1, args.size, args.size, device=device)
    naive = NaiveBDQ().to(device)
    privar = create_encoder("bdq", preset="reference").to(device)

    y_naive, y_privar = step(naive, x, w), step(privar, x, w)
    torch.testing.assert_close(y_privar, y_naive, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(privar.thresholds.grad, naive.thresholds.grad, rtol=1e-3, atol=1e-2)

    fns = {
        "naive loop (the release)": lambda: step(naive, x, w),
        "privar BDQ": lambda: step(privar, x, w),
    }
    if args.compile:
        compiled = torch.compile(privar)
        t = time.perf_counter()
        torch.testing.assert_close(step(compiled, x, w), y_privar, rtol=1e-4, atol=1e-4)
        compile_s = time.perf_counter() - t
        fns["privar BDQ, torch.compile"] = lambda: step(compiled, x, w)
    rows = seconds(fns, device, args.repeats)

    clips = args.batch
    print(f"BDQ forward + backward, {device} ({_device_name(device)}), clips {shape}, "
          f"median of {args.repeats}")  # fmt: skip
    for name, s in rows.items():
        print(f"  {name:<30}{s * 1e3:>10.1f} ms {clips / s:>10.1f} clips/s")
    naive_s = rows["naive loop (the release)"]
    result = {
        "device": _device_name(device),
        "shape": list(shape),
        "naive_s": naive_s,
        "privar_s": rows["privar BDQ"],
        "bdq_vs_naive": naive_s / rows["privar BDQ"],
    }
    print(f"  naive / privar: {result['bdq_vs_naive']:.2f}x")
    if args.compile:
        result["privar_compiled_s"] = rows["privar BDQ, torch.compile"]
        result["bdq_compiled_vs_naive"] = naive_s / result["privar_compiled_s"]
        result["compile_s"] = compile_s
        print(f"  naive / privar compiled: {result['bdq_compiled_vs_naive']:.2f}x "
              f"(compile {compile_s:.0f} s)")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


if __name__ == "__main__":
    main()
