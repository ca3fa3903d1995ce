"""BDQ's adversarial step on one GPU: float32 eager, privar's default (bf16 autocast +
channels-last) and + torch.compile, with model FLOPs and achieved TFLOP/s; then the loop fed
from a clip cache against the step alone.

Scales (issue #14): ``paper``, I3D ResNet-50 + ResNet-50 on 16x224x224 clips, batch 16; and
``small``, R3D-18 + ResNet-18 on 16x112x112, batch 32. The step is the loops' own
(:func:`privar.train.steps.adversarial_step`); FLOPs are counted once per scale by
``torch.utils.flop_counter`` over a whole step (both updates, forward and backward).

The loop cuts each batch from a clip cache on disk as the training loops do (memory-mapped
frames, a random clip per video) and feeds it through :class:`privar.train.prefetch.Prefetch`
(the next batch cut and copied while the step runs), and once without it (cut, copy, step in
turn, as before the overlap). Goals: the paper-scale compiled step at least 2.5x float32 eager,
and the loop at 95% of the step-only rate or better.

Needs only PyTorch (no Ray, MLflow or video decoders). GPU only; ``--quick`` runs the small
scale with fewer steps.

    python benchmarks/gpu_step.py [--quick] [--scale paper|small] [--steps 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from privar.data.augment import mirror
from privar.data.cache import ClipCache, create_cache, mark_complete, write_video
from privar.data.manifest import VideoRecord
from privar.data.sampling import ClipSpec, clip_rng
from privar.encoders import create_encoder
from privar.models import create_action_model, create_privacy_model
from privar.train.prefetch import Prefetch
from privar.train.steps import adversarial_step, maybe_compile, prepare_module, to_input


@dataclass(frozen=True)
class Scale:
    action: str
    privacy: str
    batch: int
    frames: int
    size: int


SCALES = {
    "paper": Scale("i3d_r50", "resnet50", batch=16, frames=16, size=224),
    "small": Scale("r3d_18", "resnet18", batch=32, frames=16, size=112),
    "tiny": Scale("r3d_18", "resnet18", batch=2, frames=4, size=32),  # --device cpu only
}
ACTIONS, IDENTITIES, ALPHA = 10, 10, 1.0
MODES = ("fp32 eager", "privar (bf16 + channels-last)", "privar + torch.compile")


@dataclass
class Cut:
    """A batch as the cache gives it: ``clip`` uint8 (B, C, T, H, W); labels int64 (B,)."""

    clip: torch.Tensor
    action: torch.Tensor
    privacy: torch.Tensor


class Player:
    """The three players and their optimisers in one precision mode."""

    def __init__(self, scale: Scale, mode: str, device: torch.device) -> None:
        torch.manual_seed(0)
        self.amp = mode != "fp32 eager"
        mods = [create_encoder("bdq"), create_action_model(scale.action, ACTIONS),
                create_privacy_model(scale.privacy, IDENTITIES)]  # fmt: skip
        place = prepare_module if self.amp else (lambda m, d: m.to(d))
        mods = [place(m, device) for m in mods]
        self.opt_et = torch.optim.SGD([*mods[0].parameters(), *mods[1].parameters()], lr=1e-3,
                                      momentum=0.9)  # fmt: skip
        self.opt_p = torch.optim.SGD(mods[2].parameters(), lr=1e-3, momentum=0.9)
        on = mode == "privar + torch.compile"
        self.encoder, self.action, self.privacy = (maybe_compile(m, device, on) for m in mods)
        self.device = device

    def input(self, clip: torch.Tensor) -> torch.Tensor:
        """uint8 clips on the device -> the step's float input (channels-last with ``amp``)."""
        if self.amp:
            return to_input(clip, self.device)
        return clip.to(self.device).float().div_(255.0)

    def step(self, x: torch.Tensor, action: torch.Tensor, privacy: torch.Tensor) -> float:
        return adversarial_step(self.encoder, self.action, self.privacy, self.opt_et, self.opt_p,
                                x, action, privacy, ALPHA, self.device, self.amp)  # fmt: skip


def random_batch(scale: Scale, device: torch.device) -> Cut:
    shape = (scale.batch, 3, scale.frames, scale.size, scale.size)
    return Cut(torch.randint(0, 256, shape, dtype=torch.uint8, device=device),
               torch.randint(0, ACTIONS, (scale.batch,), device=device),
               torch.randint(0, IDENTITIES, (scale.batch,), device=device))  # fmt: skip


def seconds_per_step(player: Player, batch: Cut, steps: int) -> float:
    x = player.input(batch.clip)
    sync(player.device)
    t = time.perf_counter()
    for _ in range(steps):
        player.step(x, batch.action, batch.privacy)
    sync(player.device)
    return (time.perf_counter() - t) / steps


def step_flops(scale: Scale, device: torch.device) -> int:
    """Model FLOPs of one whole step (both updates, forward and backward), float32 eager."""
    player = Player(scale, "fp32 eager", device)
    batch = random_batch(scale, device)
    with FlopCounterMode(display=False) as counter:
        player.step(player.input(batch.clip), batch.action, batch.privacy)
    return counter.get_total_flops()


def make_cache(folder: Path, scale: Scale, videos: int, frames: int) -> ClipCache:
    """A clip cache of ``videos`` random videos of ``frames`` frames at the scale's size."""
    size = (scale.size, scale.size)
    records = [VideoRecord(f"v{i}.mp4", str(i % ACTIONS), str(i % IDENTITIES), "train", frames)
               for i in range(videos)]  # fmt: skip
    create_cache(folder, records, size, "benchmark")
    rng = np.random.default_rng(0)
    for i in range(videos):
        write_video(folder, i, rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8))
    mark_complete(folder)
    return ClipCache(folder)


def cut_batches(cache: ClipCache, scale: Scale, steps: int) -> Iterator[Cut]:
    """``steps`` training batches cut from ``cache`` the way the loops' stream cuts them: a
    random clip per video (:meth:`ClipSpec.indices`), (T, H, W, C) frames seen as (C, T, H, W),
    channels-last in memory."""
    spec = ClipSpec(clip_len=scale.frames, size=(scale.size, scale.size))
    order = np.random.default_rng(1).integers(0, len(cache), steps * scale.batch)
    for s in range(steps):
        ids = order[s * scale.batch : (s + 1) * scale.batch]
        clips = np.stack([
            cache.clip(int(v), spec.indices(int(cache.counts[v]), True, clip_rng(0, 0, int(v))))
            for v in ids
        ])  # fmt: skip
        labels = torch.from_numpy(ids)
        clip = torch.from_numpy(clips).permute(0, 4, 1, 2, 3)
        yield Cut(clip, labels % ACTIONS, labels % IDENTITIES)


def loop(player: Player, cache: ClipCache, scale: Scale, steps: int,
         overlap: bool) -> tuple[float, float]:  # fmt: skip
    """Clips/s of the loop over ``cache``, and its share of time spent waiting for data."""

    def finish(b: Cut) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return mirror(player.input(b.clip)), b.action, b.privacy

    source = cut_batches(cache, scale, steps)
    t = time.perf_counter()
    if overlap:
        feed = Prefetch(source, player.device, finish)
        for x, action, privacy in feed:
            player.step(x, action, privacy)
        wait = feed.wait_frac
    else:
        waited = 0.0
        while True:
            w = time.perf_counter()
            b = next(source, None)
            if b is None:
                break
            x, action, privacy = finish(Cut(b.clip.to(player.device), b.action.to(player.device),
                                            b.privacy.to(player.device)))  # fmt: skip
            waited += time.perf_counter() - w
            player.step(x, action, privacy)
        wait = waited / (time.perf_counter() - t)
    sync(player.device)
    return steps * scale.batch / (time.perf_counter() - t), wait


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_scale(name: str, scale: Scale, device: torch.device, steps: int) -> dict:
    flops = step_flops(scale, device)
    print(f"\n{name}: {scale.action} + {scale.privacy}, {scale.frames}x{scale.size}x{scale.size},"
          f" batch {scale.batch}; {flops / 1e12:.2f} TFLOP per step")  # fmt: skip
    batch = random_batch(scale, device)
    modes: dict[str, dict] = {}
    players = {mode: Player(scale, mode, device) for mode in MODES}
    for mode, player in players.items():
        t = time.perf_counter()
        player.step(player.input(batch.clip), batch.action, batch.privacy)  # compiles, if asked
        sync(device)
        first_s = time.perf_counter() - t
        seconds_per_step(player, batch, 2)  # warm-up: cuDNN's autotuning, a recompile or two
        s = seconds_per_step(player, batch, steps)
        modes[mode] = {"step_s": s, "clips_per_s": scale.batch / s, "tflops": flops / s / 1e12,
                       "first_step_s": first_s}  # fmt: skip
        print(f"  {mode:<32}{s:>8.3f} s/step {scale.batch / s:>8.1f} clips/s "
              f"{flops / s / 1e12:>7.1f} TFLOP/s   (first step {first_s:.0f} s)")  # fmt: skip
    fp32, compiled = modes[MODES[0]]["step_s"], modes[MODES[-1]]["step_s"]
    print(f"  compiled vs fp32 eager: {fp32 / compiled:.2f}x (goal at paper scale >= 2.5x)")

    with tempfile.TemporaryDirectory(prefix="privar-gpu-step-") as folder:
        cache = make_cache(Path(folder), scale, videos=4 * scale.batch, frames=2 * scale.frames)
        # The loop as ``train.compile: auto`` runs it on a GPU: compiled.
        player, step_only = players[MODES[-1]], modes[MODES[-1]]["clips_per_s"]
        serial, serial_wait = loop(player, cache, scale, steps, overlap=False)
        fed, fed_wait = loop(player, cache, scale, steps, overlap=True)
    print(f"  step only (compiled)            {step_only:>8.1f} clips/s")
    print(f"  loop, cut then step             {serial:>8.1f} clips/s  data_wait_frac "
          f"{serial_wait:.2f}")  # fmt: skip
    print(f"  loop, prefetched                {fed:>8.1f} clips/s  data_wait_frac {fed_wait:.2f}"
          f"  = {fed / step_only:.0%} of step only (goal >= 95%)")  # fmt: skip
    return {
        "models": [scale.action, scale.privacy],
        "batch": scale.batch,
        "clip": [scale.frames, scale.size, scale.size],
        "flops_per_step": flops,
        "modes": modes,
        "compile_vs_fp32": fp32 / compiled,
        "loop": {
            "step_only_clips_per_s": step_only,
            "serial_clips_per_s": serial,
            "serial_data_wait_frac": serial_wait,
            "prefetch_clips_per_s": fed,
            "prefetch_data_wait_frac": fed_wait,
            "loop_vs_step": fed / step_only,
        },  # fmt: skip
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the small scale only, fewer steps")
    ap.add_argument("--scale", choices=["paper", "small"], action="append",
                    help="scales to run (default: both)")  # fmt: skip
    ap.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # cpu: a tiny dry run
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_step.py: no CUDA GPU here; this benchmark times GPU steps only")
    if device.type == "cpu":
        names, steps = ["tiny"], 2
    else:
        names = args.scale or (["small"] if args.quick else ["paper", "small"])
        steps = 5 if args.quick else args.steps
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"BDQ adversarial step on {where}, PyTorch {torch.__version__}, {steps} steps per mode")
    result = {"device": where, "torch": torch.__version__,
              "scales": {n: bench_scale(n, SCALES[n], device, steps) for n in names}}  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
