"""What an encoder shows: the display mapping and the captioned raw-over-encoded picture."""

from __future__ import annotations

import torch

from privar.tracking.images import display, sample_grid


def test_an_image_encoding_is_shown_as_it_is() -> None:
    z = torch.rand(2, 3, 8, 8)
    shown, how = display(z)
    assert torch.equal(shown, z) and how == "as is"


def test_a_signed_encoding_is_centred_on_its_still_level() -> None:
    # A learned quantiser that maps "no change" to -0.2, with a few moving pixels either side.
    z = torch.full((1, 3, 8, 8), -0.2)
    z[0, :, 0, :4], z[0, :, 1, :4] = 0.1, -0.5
    shown, how = display(z)
    assert "median" in how
    assert torch.allclose(shown[0, :, 4:], torch.tensor(0.5))  # the still background is grey
    assert shown[0, 0, 0, 0] == 1.0 and shown[0, 0, 1, 0] == 0.0  # +-0.3 around it: white, black


def test_the_picture_has_both_rows_and_captions() -> None:
    x = torch.rand(3, 3, 4, 8, 8)
    z = x[:, :, 1:] - x[:, :, :-1]
    bare = sample_grid(x, z, scale=2)
    assert bare.shape == (2 * 16, 3 * 16, 3) and bare.dtype.name == "uint8"
    captioned = sample_grid(x, z, scale=2, caption="encoder: test")
    assert captioned.shape[0] > bare.shape[0] and captioned.shape[1] == bare.shape[1]
