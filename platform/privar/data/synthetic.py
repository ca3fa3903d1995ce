"""A synthetic action dataset with a built-in privacy/utility tension: privar's default data.

Each clip shows one ACTOR doing one ACTION in front of a static camera. The frame differences of
the BDQ paper (Kumawat & Nagahara, "Privacy-Preserving Action Recognition via Motion Difference
Quantization", Sec. 3.1) keep the action and part of the identity, as in real video, so that
the encoder's blur, its quantisation and the adversarial weight have something to trade:

* The action is motion: how the limbs move (marching in place slowly or fast, waving, jumping,
  clapping overhead, boxing, kicking). Two actions share one motion and differ in fine detail
  only, as "reading" and "holding up a card" do in real video (version 3): the right hand lifts a
  sheet that carries lines of print ("read") or none ("show"). The lines are finer than BDQ's
  blur at its initial sigma, so an encoder keeps the pair apart only by blurring less, and what
  it then keeps of the lines it keeps of the actor's look too: the action has a price in
  privacy, and the search has a trade-off to find.
* Identity is, first, static appearance: shirt colours and texture, skin and hair colour, build
  (torso width and height, head size). A difference frame is zero wherever nothing moves, so
  this part vanishes behind the difference step.
* Identity also moves, as it does in real video (version 2 of the set). Each actor has a way of
  moving: a gait period, an arm swing, a sideways sway of the whole body, limb lengths and
  thickness. And each actor's sleeves and trousers carry the actor's tint and a banded texture,
  so a moving limb prints them into the differences. The sway prints the shirt's and the
  head's edges and pattern, at a smaller amplitude than the limbs' motion. Motion style is the
  part no encoder can remove without removing the action too.

Every clip draws its own nuisances (position, scale, a little speed, phase and amplitude
jitter, background, illumination, noise), so no label can be read off them. The control set
(``identity_on_limbs``) goes further: the limbs wear the actor's shirt colour in full.

:mod:`privar.data.figure` draws the actors. Here: what to generate (:class:`SynthSpec`), which
clip goes to which split (:func:`clip_plan`), one clip (:func:`make_clip`), and
:func:`write_synthetic`, which writes the clips as H.264 MP4 files plus a manifest; the
``synthetic`` adapter (:mod:`privar.data.adapters.synthetic`) generates the set on first use.
:mod:`privar.tension` measures the tension by training small models.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from privar.data.figure import ACTIONS, actor_appearance, render_clip, sample_nuisance
from privar.data.manifest import VideoRecord, write_manifest
from privar.errors import UserError

VERSION = 3  # of the generator: 1 kept identity out of motion, 2 lets motion carry some,
# 3 adds an action pair told apart only by fine detail


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. Sizes in pixels, ``fps`` in frames per second, ``crf`` is x264's
    constant rate factor (lower = better; tiny frames need a high quality to survive).
    ``identity_on_limbs`` is a control, not a dataset: the limbs wear the actor's shirt colours,
    so identity moves and frame differences keep most of it. ``motion_style=False`` is the
    opposite control (version 1's set): every actor moves alike in plain grey limbs, so only
    static appearance is identity and differences keep little of it. ``version`` is the
    generator's
    (:data:`VERSION`); a set made by another version is regenerated, never mixed."""

    num_actors: int = 6
    num_actions: int = 5
    clips_per_pair: int = 12
    num_frames: int = 32
    height: int = 64
    width: int = 64
    fps: int = 25
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    crf: int = 12
    identity_on_limbs: bool = False
    motion_style: bool = True
    version: int = 3

    def __post_init__(self) -> None:
        def bad(field: str, need: str) -> UserError:
            return UserError(f"synthetic: {field} must be {need}, got {getattr(self, field)!r}")

        if not 2 <= self.num_actors <= 99:
            raise bad("num_actors", "2..99")
        if not 2 <= self.num_actions <= len(ACTIONS):
            raise bad("num_actions", f"2..{len(ACTIONS)}")
        if self.num_frames < 2:
            raise bad("num_frames", ">= 2")
        for f in ("height", "width"):  # yuv420p needs even sizes; x264 one macroblock
            if getattr(self, f) < 16 or getattr(self, f) % 2:
                raise bad(f, "even and >= 16")
        if self.fps < 1:
            raise bad("fps", ">= 1")
        if not 0 <= self.crf <= 51:
            raise bad("crf", "0..51")
        if self.version != VERSION:
            raise bad("version", f"{VERSION} (this privar's generator)")
        counts = split_counts(self.clips_per_pair, self.val_fraction, self.test_fraction)
        if self.clips_per_pair < 3 or min(counts) < 1:
            raise UserError(
                f"synthetic: clips_per_pair={self.clips_per_pair} with val_fraction="
                f"{self.val_fraction}, test_fraction={self.test_fraction} leaves a split empty; "
                "every (actor, action) needs a clip in train, val and test"
            )

    @property
    def actions(self) -> tuple[str, ...]:
        return ACTIONS[: self.num_actions]


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) clips of one (actor, action) cell of ``n`` clips."""
    val = max(1, round(n * val_fraction))
    test = max(1, round(n * test_fraction))
    return n - val - test, val, test


def actor_name(actor: int) -> str:
    return f"actor{actor + 1:02d}"


def clip_plan(spec: SynthSpec) -> list[tuple[int, int, int, str]]:
    """Every clip as (actor, action index, clip number, split). Within each (actor, action)
    cell the clips are shuffled from the seed and cut into train/val/test, so every identity and
    every action appears in every split."""
    train, val, _ = split_counts(spec.clips_per_pair, spec.val_fraction, spec.test_fraction)
    plan = []
    for actor in range(spec.num_actors):
        for action in range(spec.num_actions):
            order = np.random.default_rng([spec.seed, actor, action, 2]).permutation(
                spec.clips_per_pair
            )
            for rank, clip in enumerate(order):
                split = "train" if rank < train else "val" if rank < train + val else "test"
                plan.append((actor, action, int(clip), split))
    return sorted(plan)


def make_clip(spec: SynthSpec, actor: int, action: int, clip: int) -> np.ndarray:
    """Clip ``clip`` of (``actor``, ``action``) as uint8 (T, H, W, 3); a pure function of spec."""
    app = actor_appearance(spec.seed, actor, spec.num_actors, spec.motion_style)
    nz = sample_nuisance(
        np.random.default_rng([spec.seed, actor, action, clip, 3]), spec.height, spec.width
    )
    limb = np.array(app.shirt) if spec.identity_on_limbs else None
    return render_clip(app, spec.actions[action], nz, spec.num_frames, limb)


def encode_h264(frames: np.ndarray, path: Path, fps: int, crf: int) -> None:
    """Write uint8 (T, H, W, 3) RGB frames as H.264 (libx264, yuv420p) in MP4.

    Settings for reproducible files: one encoder thread (x264's output depends on its thread
    count); no B-frames and no macroblock tree, because with them this x264 build now and then
    codes a 32-pixel-wide clip differently from one run to the next (3 of 18 files of a small
    set differed). No B-frames also keeps decoding order equal to display order."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium", "x264-params": "bframes=0:mbtree=0"}
        stream.codec_context.thread_count = 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _write_clip(job: tuple[SynthSpec, int, int, int, str]) -> None:
    spec, actor, action, clip, path = job
    encode_h264(make_clip(spec, actor, action, clip), Path(path), spec.fps, spec.crf)


def write_synthetic(
    out_dir: str | Path,
    spec: SynthSpec | None = None,
    overwrite: bool = False,
    workers: int | None = None,
) -> Path:
    """Generate the set into ``out_dir`` (``videos/*.mp4``, ``manifest.csv``, ``spec.json``) and
    return the manifest's path. ``workers`` threads render and encode (default: one per CPU, at
    most 8); the files do not depend on it.

    Everything is written to a hidden temporary sibling folder first and renamed into place at
    the end, so an interrupted run never leaves half a dataset. ``out_dir`` may be missing or
    empty; replacing an earlier synthetic set there needs ``overwrite``; any other content is
    never touched."""
    spec = spec or SynthSpec()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / "spec.json").is_file():
            raise UserError(f"{out}: folder holds something other than a synthetic set")
        if not overwrite:
            raise UserError(
                f"{out}: already holds a synthetic set; delete it or pick another folder"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        (tmp / "videos").mkdir()
        jobs, records = [], []
        for actor, action, clip, split in clip_plan(spec):
            path = tmp / "videos" / f"{actor_name(actor)}_{spec.actions[action]}_{clip:03d}.mp4"
            jobs.append((spec, actor, action, clip, str(path)))
            records.append(
                VideoRecord(
                    path=str(path),
                    action=spec.actions[action],
                    privacy=actor_name(actor),
                    split=split,
                    num_frames=spec.num_frames,
                    fps=float(spec.fps),
                    height=spec.height,
                    width=spec.width,
                )
            )
        _write_clip(jobs[0])  # one file first: fail fast where decord cannot read this size
        _check_decodes(records[0])
        # Threads, not processes: numpy and x264 release the GIL for most of the work, and
        # processes would need the caller's script to guard its main module.
        with ThreadPoolExecutor(workers or min(os.cpu_count() or 1, 8)) as pool:
            list(pool.map(_write_clip, jobs[1:]))
        write_manifest(records, tmp / "manifest.csv")  # paths relative: videos/...
        (tmp / "spec.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
        if out.exists():  # empty, or the set being replaced: move it aside, then swap
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            out.rename(old / "set")
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already unless something failed
    return out / "manifest.csv"


def _check_decodes(record: VideoRecord) -> None:
    """decord (privar's default decoder) must read back what we wrote, or the manifest's
    probed fields would lie. decord 0.6.0 scrambles some frame widths (16, 24, 48, 72)."""
    from privar.data.decoder import create_decoder
    from privar.errors import BrokenVideo

    try:
        info = create_decoder("decord").probe(record.path)
    except BrokenVideo as e:
        raise UserError(
            f"synthetic: decord cannot read {record.width}-pixel-wide videos back ({e.reason}); "
            "pick another width, e.g. a multiple of 32"
        ) from None
    wrote = (record.num_frames, record.height, record.width)
    if (info.num_frames, info.height, info.width) != wrote:
        raise RuntimeError(f"{record.path}: wrote {wrote} (frames, h, w), decord reads {info}")


def read_spec(path: str | Path) -> SynthSpec:
    """The spec a set was generated with, from its ``spec.json``."""
    data = json.loads(Path(path).read_text())
    return SynthSpec(**{f.name: data[f.name] for f in fields(SynthSpec) if f.name in data})
