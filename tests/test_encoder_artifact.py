"""The encoder artifact: saved and loaded back the same, a training checkpoint told apart from
an encoder file, junk refused with the file's name, nothing but tensors and plain containers
unpickled, and the round trip through an MLflow run (a local sqlite store)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from privar.encoders import create_encoder
from privar.encoders.artifact import (
    ENCODER_ARTIFACT,
    ENCODER_FILE,
    fetch_encoder,
    load_encoder,
    log_encoder,
    read_encoder,
    save_encoder,
    to_encoder_file,
)
from privar.errors import UserError
from privar.tracking import Tracker
from privar.tracking.runs import ENCODER_SAVED

PARAMS = {"levels": 4, "sigma": 2.0}


def _clip() -> torch.Tensor:
    return torch.rand(1, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0))


def _trained() -> torch.nn.Module:
    """A bdq encoder with weights no fresh one has."""
    torch.manual_seed(1)
    enc = create_encoder("bdq", **PARAMS)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return enc


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    assert type(a) is type(b)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(_clip()), b.eval()(_clip()))


def test_round_trip(tmp_path: Path) -> None:
    enc = _trained()
    path = save_encoder(enc, "bdq", PARAMS, tmp_path / ENCODER_FILE)
    assert path == tmp_path / ENCODER_FILE and not path.with_suffix(".tmp").exists()
    loaded = load_encoder(path)
    assert not loaded.training
    assert all(t.device.type == "cpu" for t in loaded.state_dict().values())
    _same(enc, loaded)
    _same(enc, read_encoder(path, "identity", {}))  # an encoder file names its own encoder


def test_a_training_checkpoint_is_told_apart(tmp_path: Path) -> None:
    enc = _trained()
    ckpt = tmp_path / "adversarial.pt"
    opt = torch.optim.Adam(enc.parameters())
    torch.save({"epoch": 3, "metrics": {"action_acc": 0.5}, "encoder": enc.state_dict(),
                "optimizer": opt.state_dict()}, ckpt)  # fmt: skip
    _same(enc, read_encoder(ckpt, "bdq", PARAMS))
    with pytest.raises(UserError, match="adversarial.pt: a training checkpoint"):
        read_encoder(ckpt)  # which encoder it holds is the study's word
    with pytest.raises(UserError, match="adversarial.pt: not an encoder file"):
        load_encoder(ckpt)
    with pytest.raises(UserError, match="adversarial.pt: weights do not fit encoder 'elr'"):
        read_encoder(ckpt, "elr", {})
    # Either kind becomes an encoder file that loads alone.
    out = to_encoder_file(ckpt, tmp_path / "e.pt", "bdq", PARAMS)
    _same(enc, load_encoder(out))
    again = to_encoder_file(out, tmp_path / ENCODER_FILE, "identity", {})
    _same(enc, load_encoder(again))


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_junk_is_a_user_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(content)
    for read in (load_encoder, read_encoder):
        with pytest.raises(UserError, match=f"{junk}: not a readable encoder file"):
            read(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(UserError, match=f"{other}: holds no encoder"):
        read_encoder(other, "bdq", PARAMS)
    with pytest.raises(UserError, match=f"{tmp_path / 'missing.pt'}: not a readable"):
        load_encoder(tmp_path / "missing.pt")


RAN: list[str] = []


def _record() -> str:
    RAN.append("pickled code ran")
    return "x"


class _Payload:
    def __reduce__(self):
        return (_record, ())


def test_only_weights_are_unpickled(tmp_path: Path) -> None:
    path = tmp_path / ENCODER_FILE
    blob = {"name": "identity", "params": {}, "state_dict": {}, "extra": _Payload()}
    torch.save(blob, path)
    RAN.clear()
    for read in (load_encoder, read_encoder):
        with pytest.raises(UserError, match=f"{path}: not a readable encoder file"):
            read(path)
    assert RAN == []  # weights_only=True: the payload's code never ran


def test_through_an_mlflow_run(tmp_path: Path) -> None:
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = tracker.experiment("artifact")
    run = tracker.create_run(exp, "trial", "t0")
    enc = _trained()
    folder = tmp_path / "node-a"
    folder.mkdir()
    log_encoder(tracker, run, save_encoder(enc, "bdq", PARAMS, folder / ENCODER_FILE))
    (folder / ENCODER_FILE).unlink()  # another node: only MLflow has it
    assert tracker.client.get_run(run).data.tags[ENCODER_SAVED] == ENCODER_ARTIFACT
    assert [a.path for a in tracker.client.list_artifacts(run, "encoder")] == [ENCODER_ARTIFACT]
    _same(enc, fetch_encoder(tracker, run))
    with pytest.raises(ValueError, match=ENCODER_FILE):
        log_encoder(tracker, run, tmp_path / "other.pt")
