"""The synthetic set's figure: an actor's look and way of moving, a clip's nuisances, the pose of
each action over time, and the renderer that paints them, as pure numpy.

What carries which label, and why, is :mod:`privar.data.synthetic`'s docstring; this module
only draws. Sizes are in figure units (1 unit ~ figure height), y pointing down, x = 0 on the
body axis; colours RGB 0..255.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

# The first five are the default set's: "read" and "show" are the pair told apart by fine detail.
ACTIONS = ("walk", "run", "jump", "read", "show", "wave", "clap", "box", "kick")
PATTERNS = ("plain", "hstripes", "vstripes", "checker")
SKIN = ((224, 187, 160), (198, 145, 110), (150, 100, 70), (100, 66, 46))
HAIR = ((40, 30, 25), (110, 70, 35), (215, 190, 120), (150, 150, 150), (160, 50, 30))
# Sleeves and trousers: light grey tinted towards the actor's shirt, with a dark outline so that
# limbs show on any background.
LIMB, OUTLINE = np.array([150.0, 152.0, 160.0]), np.array([35.0, 35.0, 40.0])
LIMB_TINT = 0.35  # share of the actor's shirt colour in the limbs' colour
BAND_CONTRAST = 40.0  # grey levels of the limbs' banded texture, either side of the limb colour
BANDS = (0.5, 1.0, 1.5)  # light/dark cycles along a limb, by actor
# The motion style: ranges over which the actors' factors are spread evenly.
GAIT, SWING = (0.8, 1.2), (0.75, 1.25)  # every action's frequency and amplitude
SWAY = (0.0, 0.06)  # sideways sway of the whole body, figure units, at the actor's gait
THICK = (0.6, 1.6)  # limb thickness

# Body layout in figure units (1 unit ~ figure height), y pointing down, x = 0 on the body axis.
ARM_LEN, ARM_R, LEG_LEN, LEG_R = 0.33, 0.045, 0.42, 0.055
# (base frequency in cycles per frame, before the per-clip speed factor)
FREQ = {"walk": 1 / 16, "run": 1 / 7, "wave": 1 / 8, "jump": 1 / 12, "clap": 1 / 6, "box": 1 / 8}
FREQ["kick"] = 1 / 10
FREQ["read"] = FREQ["show"] = 1 / 12
# What the right hand holds in "read" and "show": a sheet, width and height in figure units,
# with lines of print (cycles over its height: at the smoke study's 32 x 32 frames a period of
# 2.2-2.8 px, which BDQ's 5 x 5 blur at its initial sigma of 3 px passes at 12 % or less) or blank.
# Both sheets have the same mean colour and the same edges, so only the fine lines tell "read"
# from "show": an encoder that blurs them away loses the pair, one that keeps them keeps more of
# the actor's look too.
HELD = {"read": (0.2, 0.26, 2.0), "show": (0.2, 0.26, 0.0)}
PAPER, INK = np.array((235.0, 232.0, 220.0)), np.array((40.0, 40.0, 50.0))


@dataclass(frozen=True)
class Appearance:
    """An actor's identity: colours as RGB 0..255, sizes in figure units. The motion style:
    ``gait`` and ``swing`` scale every action's frequency and amplitude, ``arm_len``,
    ``leg_len`` and ``thick`` the limbs' length and thickness, ``sway`` (figure units) the
    body's sideways sway at the gait's rhythm; ``bands`` is the number of light/dark cycles
    along each limb."""

    shirt: tuple[float, float, float]
    shirt2: tuple[float, float, float]
    pattern: str
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    torso_w: float
    torso_h: float
    head_r: float
    gait: float = 1.0
    swing: float = 1.0
    arm_len: float = 1.0
    leg_len: float = 1.0
    bands: float = 0.0
    sway: float = 0.0
    thick: float = 1.0

    @property
    def limb(self) -> np.ndarray:
        """The sleeves' and trousers' colour, RGB 0..255: grey, tinted where the actor has a
        banded texture (a motion style)."""
        if not self.bands:
            return LIMB
        return (1 - LIMB_TINT) * LIMB + LIMB_TINT * np.array(self.shirt)


def actor_appearance(seed: int, actor: int, num_actors: int, motion_style: bool = True,
                     ) -> Appearance:  # fmt: skip
    """The appearance of ``actor``. Shirt hues and the motion style's factors are spread evenly
    over their ranges (in an order drawn from the seed) so that actors differ, with the rest
    drawn from the seed. ``motion_style=False``: every actor moves alike, in plain grey limbs
    (only static appearance is identity)."""
    rng = np.random.default_rng([seed, actor, 1])
    hue0 = np.random.default_rng([seed, 0]).random()  # one rotation of the wheel per seed

    def spread(lo_hi: tuple[float, float], stream: int) -> float:
        """This actor's place on ``lo_hi``: evenly spaced over the actors, in a seeded order."""
        rank = np.random.default_rng([seed, stream]).permutation(num_actors)[actor]
        return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * rank / max(num_actors - 1, 1)

    hue = (hue0 + actor / num_actors) % 1.0
    sat, val = rng.uniform(0.55, 0.85), rng.uniform(0.6, 0.85)
    shirt = tuple(255 * c for c in colorsys.hsv_to_rgb(hue, sat, val))
    shirt2 = tuple(255 * c for c in colorsys.hsv_to_rgb((hue + 0.5) % 1.0, sat * 0.5, val * 0.6))
    style = dict(gait=spread(GAIT, 4), swing=spread(SWING, 5), arm_len=rng.uniform(0.85, 1.15),
                 leg_len=rng.uniform(0.85, 1.15), bands=BANDS[actor % len(BANDS)],
                 sway=spread(SWAY, 6), thick=spread(THICK, 7))  # fmt: skip
    return Appearance(
        shirt=shirt,
        shirt2=shirt2,
        pattern=PATTERNS[actor % len(PATTERNS)],
        skin=SKIN[int(rng.integers(len(SKIN)))],
        hair=HAIR[(actor + int(rng.integers(2))) % len(HAIR)],
        torso_w=0.24 * rng.uniform(0.8, 1.2),
        torso_h=0.34 * rng.uniform(0.9, 1.1),
        head_r=0.09 * rng.uniform(0.85, 1.15),
        **(style if motion_style else {}),
    )


@dataclass(frozen=True)
class Nuisance:
    """Per-clip randomness that carries no label. ``unit`` is pixels per figure unit, ``cx,
    top`` the pixel position of the body axis and head top; ``speed, amp`` scale the action's
    frequency and amplitude; ``phase`` in radians; ``gain, tint`` the illumination; ``noise`` the
    sensor noise std in 0..255 levels; ``background`` float (H, W, 3) in 0..255."""

    unit: float
    cx: float
    top: float
    speed: float
    amp: float
    phase: float
    gain: float
    tint: tuple[float, float, float]
    noise: float
    noise_seed: int
    background: np.ndarray


def sample_nuisance(rng: np.random.Generator, height: int, width: int) -> Nuisance:
    """Draw one clip's nuisances. The figure stays in frame in every pose and build: it reaches
    0.75 units left and right of its axis (boxing, swaying), 0.32 units above the head top
    (clapping) and 1.15 below it (feet)."""
    unit = min((height - 2) / 1.47, (width - 2) / 1.5) * rng.uniform(0.85, 1.0)
    cx = rng.uniform(0.75 * unit + 1, width - 1 - 0.75 * unit)
    top = rng.uniform(0.32 * unit + 1, height - 1 - 1.15 * unit)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    bg = np.broadcast_to(rng.uniform(30, 220, 3), (height, width, 3)).copy()
    angle = rng.uniform(0, 2 * np.pi)  # a lighting gradient plus a few soft blobs of texture
    bg += (
        rng.uniform(-30, 30)
        * ((xx * np.cos(angle) + yy * np.sin(angle)) / max(height, width))[..., None]
    )
    for _ in range(3):
        fx, fy = rng.uniform(-3, 3, 2)
        wave = np.sin(2 * np.pi * (fx * xx / width + fy * yy / height) + rng.uniform(0, 6.3))
        bg += wave[..., None] * rng.uniform(-8, 8, 3)
    for _ in range(int(rng.integers(0, 3))):  # static objects (furniture) of random colour
        y0, x0 = rng.integers(0, height - 4), rng.integers(0, width - 4)
        h, w = rng.integers(4, height // 2), rng.integers(4, width // 3)
        bg[y0 : y0 + h, x0 : x0 + w] = rng.uniform(30, 220, 3)
    return Nuisance(
        unit=unit,
        cx=cx,
        top=top,
        speed=rng.uniform(0.93, 1.07),  # small: the actor's gait and swing are identity
        amp=rng.uniform(0.93, 1.07),
        phase=rng.uniform(0, 2 * np.pi),
        gain=rng.uniform(0.75, 1.2),
        tint=tuple(rng.uniform(0.94, 1.06, 3)),
        noise=rng.uniform(1.5, 5.0),
        noise_seed=int(rng.integers(2**31)),
        background=np.clip(bg, 0, 255).astype(np.float32),
    )


@dataclass(frozen=True)
class Pose:
    """One frame's pose: limb angles in radians from straight down, positive = away from the
    body; limb lengths as fractions of full length; ``dy`` the body's lift and ``dx`` its shift
    to the right, in figure units."""

    arms: tuple[float, float]
    arm_len: tuple[float, float] = (1.0, 1.0)
    legs: tuple[float, float] = (0.06, 0.06)
    leg_len: tuple[float, float] = (1.0, 1.0)
    dy: float = 0.0
    dx: float = 0.0


def pose(action: str, t: float, speed: float = 1.0, amp: float = 1.0, phase: float = 0.0) -> Pose:
    """The pose of ``action`` at frame ``t``; ``speed`` and ``amp`` carry the actor's gait and
    swing times the clip's jitter. Marching is in place (a treadmill), which keeps the torso
    still."""
    phi = 2 * np.pi * FREQ[action] * speed * t + phase
    s, up, down = np.sin(phi), max(0.0, np.sin(phi)), max(0.0, -np.sin(phi))
    if action == "walk":  # slow march: knees lift a little, arms swing a little
        return Pose(
            (0.15 + 0.12 * amp * s, 0.15 - 0.12 * amp * s),
            leg_len=(1 - 0.22 * amp * up, 1 - 0.22 * amp * down),
        )
    if action == "run":  # fast march: knees high, bent arms pumping
        return Pose(
            (0.55 + 0.35 * amp * s, 0.55 - 0.35 * amp * s),
            (0.75, 0.75),
            leg_len=(1 - 0.4 * amp * up, 1 - 0.4 * amp * down),
        )
    if action == "wave":  # the right arm raised, swinging side to side
        return Pose((0.12, 2.5 + 0.4 * amp * s))
    if action == "jump":  # the whole body hops; arms fly up at the top of the hop
        hop = abs(np.sin(phi / 2))
        return Pose((0.12 + 1.2 * amp * hop,) * 2, legs=(0.06 + 0.1 * hop,) * 2, dy=0.1 * amp * hop)
    if action == "clap":  # both arms overhead, hands meeting and parting
        return Pose((3.1 + 0.4 * amp * s,) * 2)
    if action == "box":  # arms out sideways, punching in turn
        return Pose((1.6, 1.6), (0.55 + 0.45 * amp * up, 0.55 + 0.45 * amp * down), legs=(0.2, 0.2))
    if action == "kick":  # the right leg kicks out sideways
        return Pose((0.4, 0.4), legs=(0.06, 0.06 + 1.0 * amp * up))
    if action in HELD:  # the right hand lifts the sheet out to the side, up and back
        lift = (1 - np.cos(phi)) / 2
        return Pose((0.15, 0.2 + 1.9 * amp * lift), arm_len=(1.0, 1 - 0.3 * lift))
    raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")


def _capsule(px, py, a, b, r):
    """(signed distance in pixels of every pixel to the segment ``a``-``b`` of radius ``r``,
    the position 0..1 along the segment of its nearest point)."""
    bax, bay = b[0] - a[0], b[1] - a[1]
    h = np.clip(((px - a[0]) * bax + (py - a[1]) * bay) / (bax * bax + bay * bay + 1e-9), 0, 1)
    return np.hypot(px - a[0] - bax * h, py - a[1] - bay * h) - r, h


def _cover(d: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage 0..1 from a signed distance in pixels (so sub-pixel motion shows)."""
    return np.clip(0.5 - d, 0.0, 1.0)[..., None]


def render_frame(app: Appearance, p: Pose, nz: Nuisance, limb: np.ndarray | None = None,
                 held: tuple[float, float, float] | None = None):  # fmt: skip
    """One noiseless, unlit frame as float (H, W, 3) in 0..255, painted back to front: background,
    limbs, torso, head, and what the right hand holds (``held``, an entry of :data:`HELD`).
    ``limb`` overrides the limbs' colour and texture (the control)."""
    height, width, _ = nz.background.shape
    py, px = np.mgrid[0:height, 0:width].astype(np.float32)
    u = nz.unit
    cx = nz.cx + p.dx * u
    top = nz.top - p.dy * u
    t_top, t_bot = (
        top + (2 * app.head_r + 0.01) * u,
        top + (2 * app.head_r + 0.01 + app.torso_h) * u,
    )
    half = app.torso_w / 2 * u
    img = nz.background.copy()

    def paint(cover: np.ndarray, colour) -> None:
        img[:] = img * (1 - cover) + cover * np.asarray(colour, np.float32)

    def limb_part(a, b, r: float) -> None:
        paint(_cover(_capsule(px, py, a, b, r + max(0.8, 0.02 * u))[0]), OUTLINE)
        d, along = _capsule(px, py, a, b, r)
        if limb is None:  # the actor's tint, banded along the limb: moves with it
            band = np.sin(2 * np.pi * app.bands * along)[..., None]
            colour = app.limb + BAND_CONTRAST * np.clip(2 * band, -1, 1)
        else:
            colour = np.asarray(limb, np.float32)
        paint(_cover(d), colour)

    # Limbs first, torso and head over them: the parts that carry identity hide the roots of
    # the parts that move, so a moving limb never uncovers (and so never differences) a shirt.
    hands = []  # (x, y) in pixels: left, right
    for side, sign in ((0, -1.0), (1, 1.0)):  # legs from the hips, arms from the shoulders
        hip = (cx + sign * half / 2, t_bot - LEG_R * u)
        ang, length = p.legs[side], LEG_LEN * app.leg_len * u * p.leg_len[side]
        foot = (hip[0] + sign * np.sin(ang) * length, hip[1] + np.cos(ang) * length)
        limb_part(hip, foot, LEG_R * app.thick * u)
        shoulder = (cx + sign * (half + ARM_R * u), t_top + ARM_R * u)
        ang, length = p.arms[side], ARM_LEN * app.arm_len * u * p.arm_len[side]
        hand = (shoulder[0] + sign * np.sin(ang) * length, shoulder[1] + np.cos(ang) * length)
        hands.append(hand)
        limb_part(shoulder, hand, ARM_R * app.thick * u)
    # The torso: a rounded box with the shirt's texture in torso coordinates (moves with it).
    qx, qy = (
        np.abs(px - cx) - half + 1,
        np.abs(py - (t_top + t_bot) / 2) - (t_bot - t_top) / 2 + 1,
    )
    d = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - 1
    tu, tv = (px - cx) / (2 * half), (py - t_top) / (t_bot - t_top)
    wave = {
        "plain": np.ones_like(tu),
        "hstripes": np.sin(2 * np.pi * 3 * tv),
        "vstripes": np.sin(2 * np.pi * 2 * tu),
        "checker": np.sin(2 * np.pi * 2 * tu) * np.sin(2 * np.pi * 2 * tv),
    }[app.pattern]
    mix = np.clip(0.5 + 2 * wave, 0, 1)[..., None]
    paint(_cover(d), mix * np.array(app.shirt) + (1 - mix) * np.array(app.shirt2))
    # The head: an ellipse of skin with a cap of hair on its top third.
    hr, hy = app.head_r * u, top + app.head_r * u
    k = np.hypot((px - cx) / (0.85 * hr), (py - hy) / hr)
    hair = np.clip(0.5 - (py - (hy - 0.35 * hr)), 0, 1)[..., None]
    paint(_cover((k - 1) * 0.85 * hr), hair * np.array(app.hair) + (1 - hair) * np.array(app.skin))
    if held is not None:  # in front of everything, upright, centred on the right hand
        (w, h, cycles), (hx, hy) = held, hands[1]
        v = (py - hy) / (h * u)  # -0.5..0.5 over the sheet's height
        # Lines in a cos^2 window: zero at the top and bottom, so the sheet's edges and mean
        # colour are those of the blank one (no coarse cue to the lines).
        lines = np.clip(2 * np.sin(2 * np.pi * cycles * v), -1, 1) * np.cos(np.pi * v) ** 2
        colour = (INK + PAPER) / 2 + (PAPER - INK) / 2 * lines[..., None]
        paint(_cover(np.maximum(np.abs(px - hx) - w / 2 * u, np.abs(py - hy) - h / 2 * u)), colour)
    return img


def render_clip(app: Appearance, action: str, nz: Nuisance, num_frames: int, limb=None):
    """A clip as uint8 (T, H, W, 3), RGB: rendered frames under the clip's illumination (gain
    and tint, constant over the clip) plus independent Gaussian sensor noise per frame. The
    actor's gait and swing scale the action's speed and amplitude."""
    light = nz.gain * np.array(nz.tint)
    speed, amp = nz.speed * app.gait, nz.amp * app.swing
    frames = []
    for t in range(num_frames):
        sway = app.sway * np.sin(2 * np.pi * FREQ["walk"] * speed * t + nz.phase)
        p = pose(action, t, speed, amp, nz.phase)
        frame = render_frame(app, replace(p, dx=p.dx + sway), nz, limb, HELD.get(action))
        frames.append(frame * light)
    clean = np.stack(frames)
    noise = np.random.default_rng(nz.noise_seed).normal(0.0, nz.noise, clean.shape)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
