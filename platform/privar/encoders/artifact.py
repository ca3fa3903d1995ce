"""The encoder artifact: one file that says which encoder it is and holds its weights.

A trial saves its trained encoder with :func:`save_encoder` and :func:`log_encoder` puts it in
the trial's MLflow run as the artifact ``encoder/encoder.pt`` (:data:`ENCODER_ARTIFACT`), tagging
the run ``privar.encoder_artifact`` with that path. Whoever needs the encoder later (a farm job
on any node, the registry and the camera export on the driver, ``privar farm --run``) gets it
with :func:`fetch_encoder`: downloaded through the tracker into a temporary folder and loaded. No
absolute path a node wrote is ever recorded, so nothing node-local crosses nodes.

The file is a ``torch.save`` dict ``{"name": registry name, "params": its parameters,
"state_dict": CPU tensors}``, read with ``weights_only=True`` (plain containers and tensors
only: loading it runs no pickled code). A *training checkpoint* (``train/common.py``'s
``Checkpoint``: ``{"epoch", "metrics", "encoder": state dict, ...}``) holds the encoder's weights
but not which encoder it is: :func:`read_encoder` takes either, the checkpoint with the study's
encoder name and parameters, and :func:`to_encoder_file` turns either into an encoder file
(``privar farm --checkpoint`` logs that one).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from privar.errors import UserError
from privar.tracking.runs import ENCODER_SAVED

if TYPE_CHECKING:
    from privar.tracking.runs import Tracker

ENCODER_FILE = "encoder.pt"
ENCODER_FOLDER = "encoder"  # the artifact folder of a run; a registered model's source
ENCODER_ARTIFACT = f"{ENCODER_FOLDER}/{ENCODER_FILE}"


def save_encoder(encoder: nn.Module, name: str, params: Mapping[str, Any],
                 path: str | Path) -> Path:  # fmt: skip
    """Write ``encoder`` (registered as ``name`` with ``params``) to ``path``: to a temporary
    file first, then renamed, so a reader never sees half a file. Returns the path."""
    path = Path(path)
    weights = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    blob = {"name": name, "params": dict(params), "state_dict": weights}
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def _read(path: str | Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a missing, corrupt or unsafe file
        raise UserError(f"{path}: not a readable encoder file ({type(e).__name__})") from None


def _build(name: str, params: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor],
           path: str | Path) -> nn.Module:  # fmt: skip
    from privar.encoders import create_encoder

    encoder = create_encoder(name, **params)
    try:
        encoder.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise UserError(f"{path}: weights do not fit encoder {name!r}: {first}") from None
    return encoder.eval()


def load_encoder(path: str | Path) -> nn.Module:
    """The encoder :func:`save_encoder` wrote, in eval mode on the CPU. Anything else (a
    training checkpoint, a corrupt file) is a :class:`~privar.errors.UserError` naming ``path``."""
    blob = _read(path)
    if not (isinstance(blob, Mapping) and "name" in blob and "state_dict" in blob):
        raise UserError(f"{path}: not an encoder file (no 'name' and 'state_dict')")
    return _build(blob["name"], blob.get("params", {}), blob["state_dict"], path)


def _contents(path: str | Path, name: str | None,
              params: Mapping[str, Any] | None) -> tuple[str, dict, Mapping]:  # fmt: skip
    """(registry name, parameters, state dict) of the encoder in ``path``: see
    :func:`read_encoder`."""
    blob = _read(path)
    if isinstance(blob, Mapping) and "name" in blob and "state_dict" in blob:
        return blob["name"], dict(blob.get("params", {})), blob["state_dict"]
    if isinstance(blob, Mapping) and isinstance(blob.get("encoder"), Mapping):
        if name is None:
            raise UserError(f"{path}: a training checkpoint; which encoder it holds comes from "
                            f"the study (--study)")  # fmt: skip
        return name, dict(params or {}), blob["encoder"]
    raise UserError(f"{path}: holds no encoder (neither an encoder file nor a training "
                    f"checkpoint)")  # fmt: skip


def read_encoder(path: str | Path, name: str | None = None,
                 params: Mapping[str, Any] | None = None) -> nn.Module:  # fmt: skip
    """The encoder in ``path``, in eval mode on the CPU: an encoder file (which names its own
    encoder; ``name`` and ``params`` are ignored), or a training checkpoint's ``"encoder"``
    weights loaded into ``create_encoder(name, **params)`` (the study's encoder). A file with
    neither, or a checkpoint without ``name``, is a :class:`~privar.errors.UserError` naming
    ``path``."""
    return _build(*_contents(path, name, params), path)


def to_encoder_file(src: str | Path, dst: str | Path, name: str | None = None,
                    params: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
    """Write at ``dst`` the encoder file of ``src``, which :func:`read_encoder` takes (an encoder
    file, or a training checkpoint with the study's ``name`` and ``params``); checked by
    building the encoder first. Returns ``dst``."""
    name, params, state_dict = _contents(src, name, params)
    return save_encoder(_build(name, params, state_dict, src), name, params, dst)


def log_encoder(tracker: Tracker, run_id: str, path: str | Path) -> None:
    """Put the encoder file ``path`` (named :data:`ENCODER_FILE`) in run ``run_id`` as the
    artifact :data:`ENCODER_ARTIFACT`, and tag the run with that artifact path."""
    if Path(path).name != ENCODER_FILE:
        raise ValueError(f"an encoder artifact is named {ENCODER_FILE}, got {path}")
    tracker.log_artifact(run_id, path, ENCODER_FOLDER)
    tracker.set_tags(run_id, {ENCODER_SAVED: ENCODER_ARTIFACT})


def fetch_encoder(tracker: Tracker, run_id: str) -> nn.Module:
    """The encoder logged to run ``run_id`` (:func:`log_encoder`), downloaded through the
    tracker into a temporary folder (removed afterwards) and loaded on the CPU."""
    with tempfile.TemporaryDirectory(prefix="privar-encoder-") as tmp:
        path = tracker.download(run_id, ENCODER_ARTIFACT, tmp)
        try:
            return load_encoder(path)
        except UserError as e:  # name the run and artifact, not the temporary file
            why = str(e).removeprefix(f"{path}: ")
            raise UserError(f"run {run_id}, artifact {ENCODER_ARTIFACT}: {why}") from None
