"""The synthetic set: real H.264 files, a manifest with every label in every split, determinism,
the adapter, and the privacy/utility tension itself, measured by training small models.

Tension thresholds, from ``measure_tension(epochs=15, views=("raw", "bdq"))`` on ``TENSION``
(version 3 of the set: walk, run, jump), seeds 0 and 1 (dataset and models): action accuracy on
raw clips 0.958-0.972 and behind an untrained BDQ 0.875-0.944; identity on raw frames
1.000-1.000; identity on untrained-BDQ frames 0.799-0.835 per frame (chance 0.25: each actor's
way of moving leaks). The control without motion style (every actor moves alike, in grey limbs)
gives 0.257-0.303 there, which breaks the leak bound: the test can fail. Each bound keeps a
margin of 0.075 or more.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from privar.data.adapters import scan_dataset
from privar.data.decoder import create_decoder
from privar.data.figure import actor_appearance, render_clip, sample_nuisance
from privar.data.manifest import SPLITS, read_manifest
from privar.data.synthetic import ACTIONS, VERSION, SynthSpec, make_clip, write_synthetic
from privar.encoders.bdq import KERNEL_SIZE
from privar.encoders.ops import blur_frames, gaussian_kernel2d
from privar.errors import UserError
from privar.tension import measure_tension

SMALL = SynthSpec(num_actors=3, num_actions=2, clips_per_pair=3, num_frames=8, height=32, width=32)
# Big enough to train on (216 training clips), small enough for a test: ~6 s to generate and
# ~15 s to train the four models. 32 x 32 frames need this many clips; 20 per pair are too few.
TENSION = SynthSpec(
    num_actors=4, num_actions=3, clips_per_pair=30, num_frames=16, height=32, width=32
)

BDQ_IDENTITY_MIN = 0.6  # per-frame identity accuracy behind an untrained BDQ, 4 actors


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("small") / "set", SMALL)


def test_files_decode_to_the_stated_frames_and_size(small_set: Path) -> None:
    records = read_manifest(small_set)
    assert len(records) == 3 * 2 * 3
    decoder = create_decoder("decord")
    for r in records:
        assert (r.num_frames, r.height, r.width, r.fps) == (8, 32, 32, 25.0)
        assert decoder.probe(r.path).num_frames == 8
        frames = decoder.read(r.path, range(8))
        assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    # Lossy, but close to what was rendered (sensor noise and 4:2:0 chroma are the difference).
    first = next(r for r in records if r.privacy == "actor01" and r.action == "walk")
    clip = int(Path(first.path).stem.split("_")[-1])
    rendered = make_clip(SMALL, 0, 0, clip).astype(int)
    assert np.abs(decoder.read(first.path, range(8)).astype(int) - rendered).mean() < 6


def test_manifest_has_every_actor_and_action_in_every_split(small_set: Path) -> None:
    records = read_manifest(small_set)
    actors = {f"actor{i:02d}" for i in (1, 2, 3)}
    for split in SPLITS:
        chosen = [r for r in records if r.split == split]
        assert {r.privacy for r in chosen} == actors
        assert {r.action for r in chosen} == set(ACTIONS[:2]) == {"walk", "run"}
    with small_set.open() as f:  # paths stay relative, so the folder can move
        assert all(row["path"].startswith("videos/") for row in csv.DictReader(f))
    assert not [p for p in small_set.parent.parent.iterdir() if p.name.startswith(".")]


def test_same_seed_same_pixels_other_seed_other_pixels(tmp_path: Path, small_set: Path) -> None:
    assert np.array_equal(make_clip(SMALL, 1, 1, 2), make_clip(SMALL, 1, 1, 2))
    again = write_synthetic(tmp_path / "again", SMALL, workers=1)
    other = write_synthetic(tmp_path / "other", replace(SMALL, seed=1))
    decoder = create_decoder("decord")
    sets = read_manifest(small_set), read_manifest(again), read_manifest(other)
    for a, b, c in zip(*sets, strict=True):
        assert (a.action, a.privacy, a.split) == (b.action, b.privacy, b.split)
        assert Path(a.path).name == Path(b.path).name == Path(c.path).name
        frames = decoder.read(a.path, range(8))
        assert np.array_equal(frames, decoder.read(b.path, range(8)))
        assert not np.array_equal(frames, decoder.read(c.path, range(8)))


def test_spec_rejects_bad_values() -> None:
    for bad in ({"num_actions": 99}, {"width": 31}, {"clips_per_pair": 2}, {"num_frames": 1}):
        with pytest.raises(UserError, match="synthetic"):
            SynthSpec(**bad)


def test_width_decord_cannot_read_fails_fast_and_leaves_nothing(tmp_path: Path) -> None:
    spec = replace(SMALL, width=48)  # decord 0.6.0 scrambles 48-pixel-wide frames
    with pytest.raises(UserError, match="48-pixel-wide"):
        write_synthetic(tmp_path / "set", spec)
    assert list(tmp_path.iterdir()) == []  # no half dataset, no temporary folder


def test_write_never_replaces_other_content(tmp_path: Path, small_set: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="something other"):
        write_synthetic(tmp_path, SMALL)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(UserError, match="already holds"):
        write_synthetic(small_set.parent, SMALL)


def test_adapter_generates_once_then_reads(tmp_path: Path) -> None:
    root = tmp_path / "synthetic"
    root.mkdir()  # scan_dataset wants the root to exist: an empty folder is generated into
    options = dict(num_actors=3, num_actions=2, clips_per_pair=3, num_frames=8, height=32, width=32)
    first = scan_dataset("synthetic", root, **options)
    stamp = (root / "manifest.csv").stat().st_mtime_ns
    assert scan_dataset("synthetic", root, **options) == first
    assert scan_dataset("synthetic", root) == first  # no options: whatever set is there
    assert (root / "manifest.csv").stat().st_mtime_ns == stamp
    assert len(first) == 18 and all(r.probed for r in first)
    with pytest.raises(UserError, match="num_actors=5"):
        scan_dataset("synthetic", root, **{**options, "num_actors": 5})
    with pytest.raises(UserError, match="unknown option"):
        scan_dataset("synthetic", root, colour="red")


@pytest.fixture(scope="module")
def tension_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("tension") / "set", TENSION)


def test_the_tension_action_survives_bdq_and_identity_leaks_in_part(tension_set: Path) -> None:
    # 8 epochs of the action model (it is at 0.9 or more by then), 15 of the identity model.
    r = measure_tension(tension_set, epochs=8, identity_epochs=15, seed=0, views=("raw", "bdq"))
    assert r["action_chance"] == pytest.approx(1 / 3) and r["identity_chance"] == 0.25
    # Utility: motion is learnable from raw clips and from an untrained BDQ's output.
    assert r["action_acc_raw"] >= 0.85
    assert r["action_acc_bdq"] >= 0.8
    # Privacy: a per-frame 2D model knows the actor from raw frames...
    assert r["identity_acc_raw"] >= 0.9
    # ...and behind BDQ still finds part of it in the actor's way of moving: the encoder's
    # blur, quantisation and adversarial weight have something to trade.
    assert r["identity_acc_bdq"] >= BDQ_IDENTITY_MIN
    assert r["identity_acc_raw"] - r["identity_acc_bdq"] >= 0.05


def test_the_leak_bound_fails_without_motion_style(tmp_path: Path) -> None:
    """The control: every actor moves alike in plain grey limbs (version 1's set), so an
    untrained BDQ keeps almost no identity and the leak bound above is broken. Proves the
    assertion can fail."""
    manifest = write_synthetic(tmp_path / "still", replace(TENSION, motion_style=False))
    r = measure_tension(manifest, epochs=15, seed=0, views=("bdq",), tasks=("identity",))
    assert r["identity_acc_bdq"] < BDQ_IDENTITY_MIN - 0.2


def test_an_old_version_set_is_regenerated(tmp_path: Path) -> None:
    root = tmp_path / "synthetic"
    options = dict(num_actors=3, num_actions=2, clips_per_pair=3, num_frames=8, height=32, width=32)
    scan_dataset("synthetic", root, **options)
    spec = json.loads((root / "spec.json").read_text())
    del spec["version"]  # what version 1 of the generator wrote
    (root / "spec.json").write_text(json.dumps(spec))
    (root / "videos" / "stale.mp4").write_bytes(b"")
    records = scan_dataset("synthetic", root, **options)
    assert json.loads((root / "spec.json").read_text())["version"] == VERSION
    assert len(records) == 18 and not (root / "videos" / "stale.mp4").exists()


def _energy_kept(diff: torch.Tensor, sigma: float) -> float:
    """The share of ``diff``'s energy, float64 (1, 3, T, H, W), that BDQ's blur at ``sigma``
    (pixels) keeps."""
    kernel = gaussian_kernel2d(torch.tensor(sigma, dtype=torch.float64), KERNEL_SIZE,
                               dtype=torch.float64)  # fmt: skip
    return float((blur_frames(diff, kernel, padding="zeros") ** 2).sum() / (diff**2).sum())


def test_read_and_show_differ_only_in_detail_that_bdq_blur_removes() -> None:
    """The pair of version 3: the same actor, motion, place and noise, with and without lines of
    print on the sheet. Their difference has no mean (no coarse cue), BDQ's 5 x 5 blur at its
    initial sigma (3 px) keeps under 5 % of its energy, and a sharp kernel (0.3 px) over 90 %:
    the pair is there for an encoder that blurs less, and only for one that does. Measured on
    six actors: 0.011-0.024 and 0.971-0.974 of the energy, mean/abs 0.017 or less."""
    for actor in range(6):
        app = actor_appearance(0, actor, 6)
        nz = sample_nuisance(np.random.default_rng(actor), 32, 32)  # the smoke study's size
        read, show = (render_clip(app, a, nz, 8).astype(np.float64) for a in ("read", "show"))
        diff = torch.from_numpy(read - show).permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
        assert diff.abs().sum() > 5000  # the lines are there, in every frame's sheet
        assert abs(diff.sum()) < 0.05 * diff.abs().sum()
        assert _energy_kept(diff, 3.0) < 0.05 and _energy_kept(diff, 0.3) > 0.9
