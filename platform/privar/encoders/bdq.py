"""BDQ: Blur -> Difference -> Quantization (Kumawat & Nagahara, ``papers/001``, Sec. 3.1).

* Blur: a 5x5 Gaussian per frame (depthwise), sigma learnable.
* Difference: ``d_t = B(x)_t - B(x)_{t-1}``, so T frames in give T - 1 out.
* Quantization: ``d`` is normalised to [0, N-1] and passed through a sum of N-1 sigmoids,
  ``y = sum_n sigmoid(H (x' - b_n))``, a differentiable staircase whose steps ``b_n`` are learned
  (initialised 0.5, 1.5, ..., N-1.5; N = 16, H = 5 in the paper, Sec. 4.1).

``create_encoder("bdq", preset="reference")`` reproduces the authors' release
(github.com/suakaw/BDQ_PrivacyAR, ``models/threed_models/degradNet.py``) in float32: same
formulas, order of operations and threshold handling. Its 5x5 kernel is built as the normalised
outer product of a normalised 1-D Gaussian; the release normalises a product of unnormalised
densities instead, equal up to float32 rounding (~1e-8 per tap), so outputs agree to ~5e-7.
"""

from __future__ import annotations

import torch
from torch import nn

from privar.encoders import ops
from privar.encoders.base import ENCODERS, Encoder
from privar.errors import UserError

KERNEL_SIZE = 5  # "Window-size of the kernel is kept as 5x5" (Sec. 3.1)
EPS = 1e-4  # the release's guard on the range and the scale
# A learned sigma's floor, in pixels: the 5x5 kernel is then 98.5 % centre tap (no visible blur)
# and its gradient in sigma is still alive; below about 0.2 px it vanishes (exp(-1 / 2 sigma^2)).
SIGMA_MIN = 0.3


class BDQ(Encoder):
    """The BDQ encoder: ``(B, C, T, H, W)`` in [0, 1] -> ``(B, C, T-1, H, W)``.

    The output is in the units of the frame difference: values lie in about ``[m, M]``, the
    range of ``d`` (so roughly [-1, 1]), snapped towards ``levels`` steps.

    Args:
        sigma: initial (or, with ``learn_sigma=False``, fixed) blur std, in pixels.
        levels: number of quantization levels N; N - 1 learnable thresholds.
        hardness: H, the sigmoids' slope; larger = closer to a hard staircase.
        learn_sigma: whether sigma is a trainable parameter.
        per_clip_norm: normalise each clip by its own min/max over (C, T, H, W) (True), or by the
            min/max of the whole batch tensor, as the release does (False).

    Differences from the authors' release (the ``reference`` preset: ``learn_sigma=False``,
    ``per_clip_norm=False``, ``sigma=3``, ``levels=16``, ``hardness=5``):

    * sigma is learned through the kernel (the paper says it is learned; the release freezes
      the kernel at sigma = 3), so the default has 16 trainable parameters, the reference 15;
    * each clip is normalised on its own, because the encoder runs at the camera one clip at a
      time: in the release a clip's encoding depends on the other clips of its batch;
    * ``levels`` is a parameter (the release fixes 4 bits);
    * the whole forward runs in float32 (float64 if given), autocast or not: the difference of
      nearly equal frames and the 1e-4 guards do not survive half precision;
    * one tensor is returned (the release returns ``(y, thresholds)``).

    Like the release, each forward first projects the thresholds onto their valid set (clamp to
    [0, N-1], sort) in place, outside autograd: projected gradient descent, so a threshold that
    an optimizer step pushed out of range comes back with the next gradient instead of sitting
    dead behind a clamp. A learned sigma is projected the same way onto ``[SIGMA_MIN, inf)``:
    behind a clamp at zero, a sigma that one step (or Adam's momentum) pushed negative would get
    no gradient again and the encoder would have lost its blur for good.
    """

    def __init__(
        self,
        sigma: float = 3.0,
        levels: int = 16,
        hardness: float = 5.0,
        learn_sigma: bool = True,
        per_clip_norm: bool = True,
    ) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if learn_sigma and sigma < SIGMA_MIN:
            raise ValueError(f"a learned sigma must be >= {SIGMA_MIN}, got {sigma}")
        self.levels = int(levels)
        self.hardness = hardness
        self.per_clip_norm = per_clip_norm
        sigma_t = torch.tensor(float(sigma))
        if learn_sigma:
            self.sigma = nn.Parameter(sigma_t)
        else:
            self.register_buffer("sigma", sigma_t)
        # b_n = 0.5, 1.5, ..., N - 1.5 (Sec. 3.1), N - 1 of them.
        self.thresholds = nn.Parameter(torch.arange(self.levels - 1, dtype=torch.float32) + 0.5)

    def out_frames(self, t: int) -> int:
        return t - 1

    def kernel(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The 5x5 blur kernel for the current sigma; differentiable in a learnable sigma, which
        is first projected onto ``[SIGMA_MIN, inf)`` in place (see the class docstring)."""
        if isinstance(self.sigma, nn.Parameter):
            with torch.no_grad():
                self.sigma.clamp_(min=SIGMA_MIN)
        return ops.gaussian_kernel2d(self.sigma, KERNEL_SIZE, dtype=dtype)

    def _project_thresholds(self) -> torch.Tensor:
        # In place and outside autograd, as the release does (see the class docstring).
        with torch.no_grad():
            b = self.thresholds.clamp(0, self.levels - 1).sort().values
            self.thresholds.copy_(b)
        return self.thresholds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x, min_frames=2)
        with torch.autocast(device_type=x.device.type, enabled=False):
            # float32, or float64 when given (for gradcheck); half precision is upcast.
            x = x if x.dtype == torch.float64 else x.float()
            blurred = ops.blur_frames(x, self.kernel(x.dtype), padding="zeros")
            d = blurred[:, :, 1:] - blurred[:, :, :-1]
            if self.per_clip_norm:
                lo = d.amin(dim=(1, 2, 3, 4), keepdim=True)
                hi = d.amax(dim=(1, 2, 3, 4), keepdim=True)
            else:
                lo, hi = d.min(), d.max()
            # The release's max((M - m) / 15, 1e-4), as a tensor op: same value, and an export
            # by tracing keeps both branches.
            scale = ((hi - lo) / (self.levels - 1)).clamp_min(EPS)
            # The release's order of operations, so float32 rounding matches it too.
            xq = ((d - lo) / ((hi - lo) + EPS)) * (self.levels - 1)
            b = self._project_thresholds()
            # Summed one step at a time from zero, the release's order of additions.
            y = torch.zeros_like(xq)
            for n in range(self.levels - 1):
                y = y + torch.sigmoid(self.hardness * (xq - b[n]))
            return y.mul(scale).add(lo)


PRESETS: dict[str, dict[str, object]] = {
    # The authors' release: frozen sigma = 3 kernel, whole-batch min/max, 4 bits, H = 5.
    "reference": {
        "sigma": 3.0,
        "levels": 16,
        "hardness": 5.0,
        "learn_sigma": False,
        "per_clip_norm": False,
    },
}


@ENCODERS.register("bdq", input="clip")
def bdq(preset: str | None = None, sigma: float | None = None, levels: int | None = None,
        hardness: float | None = None, learn_sigma: bool | None = None,
        per_clip_norm: bool | None = None) -> BDQ:  # fmt: skip
    """``BDQ`` with the given parameters (``None``: BDQ's default), or a named preset
    (``"reference"``: the release, taking no other parameter, since any change would make it no
    longer the reference)."""
    given = dict(sigma=sigma, levels=levels, hardness=hardness, learn_sigma=learn_sigma,
                 per_clip_norm=per_clip_norm)  # fmt: skip
    params = {k: v for k, v in given.items() if v is not None}
    if preset is None:
        return BDQ(**params)  # type: ignore[arg-type]
    if preset not in PRESETS:
        raise UserError(f"encoder bdq: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    if params:
        raise UserError(
            f"encoder bdq: preset {preset!r} takes no other parameters, got {', '.join(params)}"
        )
    return BDQ(**PRESETS[preset])  # type: ignore[arg-type]
