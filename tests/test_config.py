"""Study files: typed, frozen, and every mistake is one line naming the file and key path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from privar.errors import UserError
from privar.study import DataConfig, Study, load_study

STUDIES = sorted((Path(__file__).parent.parent / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_every_shipped_study_validates(path: Path) -> None:
    study = load_study(path)
    assert study.name == path.stem


def test_values_are_typed_and_frozen(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("name: s\ndata: {size: [12, 16], clip_len: 4, cache_budget_gb: 1}\n")
    s = load_study(p)
    assert s.data.size == (12, 16) and s.data.cache_budget_gb == 1.0
    assert isinstance(s, Study) and isinstance(s.data, DataConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.data.clip_len = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: s\ndata: {clip_lenn: 4}\n", "s.yaml: data.clip_lenn: unknown key"),
        ("name: s\ndata: {clip_len: four}\n", "s.yaml: data.clip_len: expected int, got str"),
        ("name: s\ndata: {clip_len: true}\n", "s.yaml: data.clip_len: expected int, got bool"),
        ("name: s\ndata: {size: [12]}\n", "s.yaml: data.size: expected a list of 2"),
        ("name: s\ndata: {stride: 0}\n", "s.yaml: data.stride: must be at least 1"),
        ("name: s\ndata: [1, 2]\n", "s.yaml: data: expected a mapping, got a list"),
        ("data: {}\n", "s.yaml: name: required key is missing"),
        (
            "name: s\ntrain: {epochs: 2}\nadversarial: {encoder_warmup_epochs: 2}\n",
            "s.yaml: adversarial.encoder_warmup_epochs: must be below train.epochs",
        ),
        ("name: s\n  bad: [\n", "s.yaml: line 2: not valid YAML"),
        ("- just\n- a list\n", "s.yaml: expected a mapping"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(UserError, match=message.replace("[", r"\[")):
        load_study(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nope.yaml: no such study file"):
        load_study(tmp_path / "nope.yaml")


def test_overrides_are_checked_like_the_file(tmp_path: Path) -> None:
    from privar.study import with_overrides

    p = tmp_path / "s.yaml"
    p.write_text("name: s\nencoder: {name: bdq, params: {levels: 8}}\n")
    s = load_study(p)
    t = with_overrides(s, {"adversarial.alpha": 2, "encoder.params.levels": 4, "data.size": [8, 8]})
    assert t.adversarial.alpha == 2.0 and t.encoder.params == {"levels": 4}
    assert t.data.size == (8, 8) and s.adversarial.alpha == 1.0  # the original is untouched
    with pytest.raises(UserError, match="--set: adversarial.alfa: unknown key"):
        with_overrides(s, {"adversarial.alfa": 2})
    with pytest.raises(UserError, match="--set: adversarial.alpha: must be >= 0"):
        with_overrides(s, {"adversarial.alpha": -1})
    with pytest.raises(UserError, match="--set: name.x: not a section|--set: name: not a section"):
        with_overrides(s, {"name.x": 1})
