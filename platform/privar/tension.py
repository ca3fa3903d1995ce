"""Measure a dataset's privacy/utility tension with small models trained from scratch.

Each number comes from a model trained on the train split and scored on the test split, on one
of three views of the clips:

* ``raw``: the frames themselves, in 0..1;
* ``diff``: the motion-only view ``x[t] - x[t-1]`` (the *Difference* module of BDQ);
* ``bdq``: a fixed, untrained BDQ encoder (default blur sigma 3, 16 levels): blur, difference,
  quantisation (Kumawat & Nagahara, "Privacy-Preserving Action Recognition via Motion
  Difference Quantization", Sec. 3.1). What an encoder leaks before any adversarial training.

``action_acc_<view>``: a ``baby3d`` on whole clips (the utility model). ``identity_acc_<view>``:
a ``baby2d`` on single frames of the view (the privacy adversary), per frame;
``identity_acc_<view>_clip`` is the stronger clip-level attack that averages the frame logits over
a test clip. Used by the synthetic-data tests and ``benchmarks/synthetic_tension.py``; it runs on
CPU in seconds to minutes for the smoke-size sets.
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
from privar.encoders import create_encoder
from privar.models import create_action_model, create_privacy_model

VIEWS = ("raw", "diff", "bdq")


def load_clips(
    records: Sequence[VideoRecord],
    decoder: str = "decord",
    size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, list[str], list[str]]:
    """Decode every frame of ``records``: uint8 (N, T, H, W, 3), T the shortest video's length,
    (H, W) = ``size`` when given (else the videos' own), with the action and privacy labels in
    record order."""
    dec = create_decoder(decoder)
    num_frames = min(r.num_frames or dec.probe(r.path).num_frames for r in records)
    clips = np.stack([dec.read(r.path, range(num_frames), size) for r in records])
    return torch.from_numpy(clips), [r.action for r in records], [r.privacy for r in records]


@torch.no_grad()
def as_view(clips: torch.Tensor, view: str, batch: int = 64) -> torch.Tensor:
    """uint8 (N, T, H, W, 3) to float (N, 3, T', H, W): ``raw`` in 0..1 (T' = T); ``diff`` in
    -1..1 (T' = T - 1, frame t is ``x[t+1] - x[t]``); ``bdq`` in difference units (T' = T - 1),
    each clip encoded on its own by the untrained default BDQ."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    encoder = create_encoder("bdq").eval() if view == "bdq" else None
    out = []
    for i in range(0, len(clips), batch):
        x = clips[i : i + batch].permute(0, 4, 1, 2, 3).float() / 255.0
        if view == "diff":
            x = x[:, :, 1:] - x[:, :, :-1]
        elif encoder is not None:
            x = encoder(x)
        out.append(x)
    return torch.cat(out)


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
    views: torch.Tensor, labels: torch.Tensor, num_classes: int, epochs: int, seed: int,
    lr: float = 3e-3,
) -> nn.Module:  # fmt: skip
    """Train a ``baby3d`` on whole clips of one view, float (N, 3, T, H, W)."""
    torch.manual_seed(seed)
    model = create_action_model("baby3d", num_classes)
    gen = torch.Generator().manual_seed(seed)
    batch = 8

    def batches():
        for _ in range(epochs):
            order = torch.randperm(len(views), generator=gen)
            for i in range(0, len(order), batch):
                idx = order[i : i + batch]
                yield mirror(views[idx], gen), labels[idx]

    _fit(model, batches(), epochs * -(-len(views) // batch), lr=lr)
    return model.eval()


def train_identity(
    views: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    epochs: int,
    seed: int,
    frames_per_clip: int = 4,
    lr: float = 3e-3,
    model_name: str = "baby2d",
) -> nn.Module:
    """Train a 2D privacy model (``model_name``) on single frames of one view, float
    (N, 3, T, H, W): each epoch draws ``frames_per_clip`` random frames from every clip."""
    torch.manual_seed(seed)
    model = create_privacy_model(model_name, num_classes)
    gen = torch.Generator().manual_seed(seed)
    n, num_frames, batch = len(views), views.shape[2], 64
    per_epoch = n * frames_per_clip

    def batches():
        for _ in range(epochs):
            idx = torch.arange(n).repeat(frames_per_clip)
            t = torch.randint(0, num_frames, (per_epoch,), generator=gen)
            order = torch.randperm(per_epoch, generator=gen)
            for i in range(0, per_epoch, batch):
                o = order[i : i + batch]
                yield mirror(views[idx[o], :, t[o]], gen), labels[idx[o]]

    _fit(model, batches(), epochs * -(-per_epoch // batch), lr=lr)
    return model.eval()


@torch.no_grad()
def score_action(model: nn.Module, views: torch.Tensor, labels: torch.Tensor) -> float:
    """Clip accuracy of ``model`` on clips of one view, float (N, 3, T, H, W)."""
    hits = sum(
        (model(views[i : i + 16]).argmax(1) == labels[i : i + 16]).sum().item()
        for i in range(0, len(views), 16)
    )
    return hits / len(views)


@torch.no_grad()
def score_identity(
    model: nn.Module, views: torch.Tensor, labels: torch.Tensor
) -> tuple[float, float]:
    """(per-frame accuracy over every frame of every clip, clip accuracy from the mean of the
    frame logits), on clips of one view, float (N, 3, T, H, W)."""
    frame_hits, clip_hits = 0, 0
    for clip, label in zip(views, labels, strict=True):
        logits = model(clip.transpose(0, 1))  # (T, 3, H, W): the clip's frames as a batch
        frame_hits += (logits.argmax(1) == label).sum().item()
        clip_hits += int(logits.mean(0).argmax().item() == label.item())
    return frame_hits / (len(views) * views.shape[2]), clip_hits / len(views)


def measure_tension(
    source: str | os.PathLike | Sequence[VideoRecord],
    *,
    epochs: int = 15,
    identity_epochs: int | None = None,
    frames_per_clip: int = 4,
    seed: int = 0,
    decoder: str = "decord",
    size: tuple[int, int] | None = None,
    views: Sequence[str] = VIEWS,
    tasks: Sequence[str] = ("action", "identity"),
) -> dict[str, float]:
    """Train the models of ``tasks`` (action, identity) for each of ``views`` on ``source``'s
    train split (a manifest path or records; frames resized to ``size`` when given) and score
    them on its test split. Returns accuracies in 0..1: ``action_acc_<view>``,
    ``identity_acc_<view>`` (per frame) and ``identity_acc_<view>_clip`` (per clip), and the
    chance levels ``action_chance, identity_chance`` (the majority class's share of the test
    split)."""
    records = read_manifest(source) if isinstance(source, str | os.PathLike) else list(source)
    actions, actors = label_index(records, "action"), label_index(records, "privacy")
    data = {}
    for split in ("train", "test"):
        chosen = [r for r in records if r.split == split]
        if not chosen:
            raise ValueError(f"no {split} videos to measure the tension on")
        clips, act, who = load_clips(chosen, decoder, size)
        data[split] = (
            clips,
            torch.tensor([actions[a] for a in act]),
            torch.tensor([actors[p] for p in who]),
        )
    (tr, tr_act, tr_id), (te, te_act, te_id) = data["train"], data["test"]
    out: dict[str, float] = {}
    for view in views:
        train_x, test_x = as_view(tr, view), as_view(te, view)
        if "action" in tasks:
            model = train_action(train_x, tr_act, len(actions), epochs, seed)
            out[f"action_acc_{view}"] = score_action(model, test_x, te_act)
        if "identity" in tasks:
            model = train_identity(
                train_x, tr_id, len(actors), identity_epochs or epochs, seed, frames_per_clip
            )
            out[f"identity_acc_{view}"], out[f"identity_acc_{view}_clip"] = score_identity(
                model, test_x, te_id
            )
    out["action_chance"] = te_act.bincount().max().item() / len(te_act)
    out["identity_chance"] = te_id.bincount().max().item() / len(te_id)
    return out
