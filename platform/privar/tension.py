"""Measure a dataset's privacy/utility tension with small models trained from scratch.

Four numbers, each from a model trained on the train split and scored on the test split:

* ``action_acc_raw``: a small 3D conv net on whole raw clips (the utility model);
* ``identity_acc_raw``: a small 2D conv net on single raw frames (the privacy adversary);
* ``action_acc_diff`` and ``identity_acc_diff``: the same two models on the motion-only view
  ``x[t] - x[t-1]`` (the *Difference* module of BDQ, Sec. 3.1).

Identity accuracy is per frame (the adversary sees one frame); ``identity_acc_*_clip`` also
reports the stronger clip-level attack that averages the frame logits over a test clip. Used by
the synthetic-data tests and ``benchmarks/synthetic_tension.py``; it runs on CPU in seconds to
minutes for the smoke-size sets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from privar.data.augment import mirror
from privar.data.decoder import create_decoder
from privar.data.manifest import VideoRecord, label_index, read_manifest
from privar.models import create_action_model, create_privacy_model

VIEWS = ("raw", "diff")


def load_clips(
    records: Sequence[VideoRecord], decoder: str = "decord"
) -> tuple[torch.Tensor, list[str], list[str]]:
    """Decode every frame of ``records``: uint8 (N, T, H, W, 3), T the shortest video's length,
    with the action and privacy labels in record order."""
    dec = create_decoder(decoder)
    num_frames = min(r.num_frames or dec.probe(r.path).num_frames for r in records)
    clips = np.stack([dec.read(r.path, range(num_frames)) for r in records])
    return torch.from_numpy(clips), [r.action for r in records], [r.privacy for r in records]


def as_input(clips: torch.Tensor, view: str) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) to float (B, 3, T', H, W) in 0..1 (raw, T' = T) or -1..1 (diff,
    T' = T - 1, frame t is ``x[t+1] - x[t]``)."""
    x = clips.permute(0, 4, 1, 2, 3).float() / 255.0
    if view == "raw":
        return x
    if view == "diff":
        return x[:, :, 1:] - x[:, :, :-1]
    raise ValueError(f"view must be one of {VIEWS}, got {view!r}")


def _fit(model: nn.Module, batches, steps: int, lr: float) -> None:
    """Adam with a cosine-decayed learning rate over ``steps`` batches of (inputs, labels)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    model.train()
    for x, y in batches:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()


def train_action(
    clips: torch.Tensor,
    labels: torch.Tensor,
    view: str,
    num_classes: int,
    epochs: int,
    seed: int,
    lr: float = 3e-3,
) -> nn.Module:
    """Train a ``baby3d`` on whole clips uint8 (N, T, H, W, 3) seen through ``view``."""
    torch.manual_seed(seed)
    model = create_action_model("baby3d", num_classes)
    gen = torch.Generator().manual_seed(seed)
    batch = 8

    def batches():
        for _ in range(epochs):
            order = torch.randperm(len(clips), generator=gen)
            for i in range(0, len(order), batch):
                idx = order[i : i + batch]
                yield mirror(as_input(clips[idx], view), gen), labels[idx]

    _fit(model, batches(), epochs * -(-len(clips) // batch), lr=lr)
    return model.eval()


def _frame_batch(clips: torch.Tensor, idx: torch.Tensor, t: torch.Tensor, view: str):
    """Frame ``t`` of each clip ``idx`` through ``view``: (B, 3, H, W). A diff frame needs its
    predecessor, so it is cut as a two-frame clip and differenced."""
    if view == "raw":
        return as_input(clips[idx, t][:, None], view)[:, :, 0]
    pair = torch.stack([clips[idx, t - 1], clips[idx, t]], 1)
    return as_input(pair, view)[:, :, 0]


def train_identity(
    clips: torch.Tensor,
    labels: torch.Tensor,
    view: str,
    num_classes: int,
    epochs: int,
    seed: int,
    frames_per_clip: int = 4,
    lr: float = 3e-3,
) -> nn.Module:
    """Train a ``baby2d`` on single frames: each epoch draws ``frames_per_clip``
    random frames (diff: frame pairs) from every training clip."""
    torch.manual_seed(seed)
    model = create_privacy_model("baby2d", num_classes)
    gen = torch.Generator().manual_seed(seed)
    first = 0 if view == "raw" else 1
    n, num_frames, batch = len(clips), clips.shape[1], 64
    per_epoch = n * frames_per_clip

    def batches():
        for _ in range(epochs):
            idx = torch.arange(n).repeat(frames_per_clip)
            t = torch.randint(first, num_frames, (per_epoch,), generator=gen)
            order = torch.randperm(per_epoch, generator=gen)
            for i in range(0, per_epoch, batch):
                o = order[i : i + batch]
                yield mirror(_frame_batch(clips, idx[o], t[o], view), gen), labels[idx[o]]

    _fit(model, batches(), epochs * -(-per_epoch // batch), lr=lr)
    return model.eval()


@torch.no_grad()
def score_action(model: nn.Module, clips: torch.Tensor, labels: torch.Tensor, view: str) -> float:
    """Clip accuracy of ``model`` on uint8 clips (N, T, H, W, 3)."""
    hits = sum(
        (model(as_input(clips[i : i + 16], view)).argmax(1) == labels[i : i + 16]).sum().item()
        for i in range(0, len(clips), 16)
    )
    return hits / len(clips)


@torch.no_grad()
def score_identity(
    model: nn.Module, clips: torch.Tensor, labels: torch.Tensor, view: str
) -> tuple[float, float]:
    """(per-frame accuracy over every frame of every clip, clip accuracy from the mean of the
    frame logits)."""
    first = 0 if view == "raw" else 1
    frame_hits, clip_hits, frames = 0, 0, 0
    for i in range(len(clips)):
        t = torch.arange(first, clips.shape[1])
        logits = model(_frame_batch(clips, torch.full_like(t, i), t, view))
        frame_hits += (logits.argmax(1) == labels[i]).sum().item()
        clip_hits += int(logits.mean(0).argmax().item() == labels[i].item())
        frames += len(t)
    return frame_hits / frames, clip_hits / len(clips)


def measure_tension(
    source: str | os.PathLike | Sequence[VideoRecord],
    *,
    epochs: int = 15,
    identity_epochs: int | None = None,
    frames_per_clip: int = 4,
    seed: int = 0,
    decoder: str = "decord",
) -> dict[str, float]:
    """Train the four models on ``source``'s train split (a manifest path or records) and score
    them on its test split. Returns accuracies in 0..1: ``action_acc_raw, identity_acc_raw,
    action_acc_diff, identity_acc_diff`` (identity per frame), ``identity_acc_raw_clip,
    identity_acc_diff_clip`` (identity per clip), and the chance levels ``action_chance,
    identity_chance`` (the majority class's share of the test split)."""
    records = read_manifest(source) if isinstance(source, str | os.PathLike) else list(source)
    actions, actors = label_index(records, "action"), label_index(records, "privacy")
    data = {}
    for split in ("train", "test"):
        chosen = [r for r in records if r.split == split]
        if not chosen:
            raise ValueError(f"no {split} videos to measure the tension on")
        clips, act, who = load_clips(chosen, decoder)
        data[split] = (
            clips,
            torch.tensor([actions[a] for a in act]),
            torch.tensor([actors[p] for p in who]),
        )
    (tr, tr_act, tr_id), (te, te_act, te_id) = data["train"], data["test"]
    out: dict[str, float] = {}
    for view in VIEWS:
        model = train_action(tr, tr_act, view, len(actions), epochs, seed)
        out[f"action_acc_{view}"] = score_action(model, te, te_act, view)
        model = train_identity(
            tr, tr_id, view, len(actors), identity_epochs or epochs, seed, frames_per_clip
        )
        out[f"identity_acc_{view}"], out[f"identity_acc_{view}_clip"] = score_identity(
            model, te, te_id, view
        )
    out["action_chance"] = te_act.bincount().max().item() / len(te_act)
    out["identity_chance"] = te_id.bincount().max().item() / len(te_id)
    return out
