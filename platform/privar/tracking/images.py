"""What an encoder shows, as one captioned image a person can look at in the MLflow UI.

Every trial and baseline of a study logs the same clips this way at the same artifact path
(:data:`SAMPLES`), so MLflow's run comparison shows them side by side: the raw frames on top,
the encoded ones below, each row under a caption saying what it is and how it is shown.
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLES = "samples/encoded.png"  # the artifact path of every run's picture
PERCENTILE = 99.0  # a signed encoding is scaled by this percentile of |value|, per image
CAPTION_PX = 14  # height of one caption line, in pixels
MARGIN_PX = 4


def display(z: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Encoded frames ``z`` (N, C, H, W) mapped to [0, 1] for the eye, and how, in words.

    An encoding with no negative value (identity, down-sampling, ELR) is an image already and
    is shown as it is, clamped to [0, 1]. A signed one (BDQ's quantised frame differences, a few
    hundredths around 0) would be a flat grey: each image is scaled symmetrically around grey,
    its median (what a still background quantises to, 0 for a plain difference; a learned
    quantiser may move it off 0) -> grey and median +-s -> white / black, with ``s`` the
    :data:`PERCENTILE`-th percentile of ``|value - median|`` (robust to a few outliers)."""
    z = z.float()
    if z.numel() == 0 or z.min() >= 0:
        return z.clamp(0, 1), "as is"
    centre = z.flatten(1).median(dim=1).values[:, None, None, None]
    flat = (z - centre).abs().flatten(1)
    s = torch.quantile(flat, PERCENTILE / 100, dim=1).clamp_min(1e-6)
    shown = (0.5 + 0.5 * (z - centre) / s[:, None, None, None]).clamp(0, 1)
    return shown, f"signed: grey = median (still), white/black = +-p{PERCENTILE:g} per image"


def sample_grid(x: torch.Tensor, z: torch.Tensor, scale: int = 4,
                caption: str | None = None) -> np.ndarray:  # fmt: skip
    """Raw frames over encoded frames, each row under its caption: uint8 (H', W', 3).

    ``x`` float (N, C, T, H, W) in [0, 1], the raw clips; ``z`` (N, C', T', H', W') their
    encodings; the middle frame of each. Encoded frames are mapped by :func:`display` and
    resized to the raw frame's size (nearest); one-channel encodings are shown grey. ``scale``
    enlarges tiny frames by pixel repetition. ``caption`` names the encoded row (``encoder: bdq
    alpha=1.11 levels=4``); how its values are shown is added to it, and the top row is
    captioned ``raw``. ``caption=None`` draws no captions."""
    n, _, _, h, w = x.shape
    raw = x[:, :, x.shape[2] // 2].float().clamp(0, 1)
    enc = z[:, :, z.shape[2] // 2].float()
    if enc.shape[1] == 1:
        enc = enc.expand(-1, 3, -1, -1)
    enc = enc[:, :3]
    if enc.shape[-2:] != (h, w):
        enc = torch.nn.functional.interpolate(enc, size=(h, w), mode="nearest")
    enc, how = display(enc)
    rows = [_row(r, scale) for r in (raw, enc)]
    if caption is None:
        return np.concatenate(rows, axis=0)
    width = rows[0].shape[1]
    return np.concatenate([_caption(f"raw ({n} clips, middle frame)", width), rows[0],
                           _caption(f"{caption} ({how})", width), rows[1]], axis=0)  # fmt: skip


def _row(frames: torch.Tensor, scale: int) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> uint8 (H * scale, N * W * scale, 3), frames side by side."""
    row = torch.cat(list(frames), dim=2).repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return (row.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def _caption(text: str, width: int) -> np.ndarray:
    """``text`` in black on white, wrapped to ``width`` pixels: uint8 (lines * 14 + 4, width, 3),
    in PIL's default font."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines, line = [], ""
    for word in text.split(" "):
        longer = f"{line} {word}" if line else word
        if line and measure.textlength(longer, font=font) > width - 2 * MARGIN_PX:
            lines.append(line)
            longer = word
        line = longer
    lines.append(line)
    image = Image.new("RGB", (width, len(lines) * CAPTION_PX + MARGIN_PX), "white")
    draw = ImageDraw.Draw(image)
    for i, text_line in enumerate(lines):
        draw.text((MARGIN_PX, MARGIN_PX // 2 + i * CAPTION_PX), text_line, fill="black", font=font)
    return np.asarray(image, dtype=np.uint8)
